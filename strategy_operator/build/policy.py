"""What may run here: the operator's admission-like checks of a spec, apart from the manifest builders.

The CRD's CEL rules are the API server's to enforce; these are the rules that depend on the
operator's settings (live namespaces, allowed images, default ledger and bucket), checked
without any API server. What a pod needs from Secrets is listed here too; the operator looks
those up (``observe.secrets``) before a pod starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from livestrat.api.resource import LiveStrategy
from livestrat.api.spec import CodeSourceKind, Mode
from strategy_operator.settings import OperatorSettings


@dataclass(frozen=True)
class SpecProblem:
    """Why a spec cannot run here, found without asking the API server. ``reason`` is a condition reason."""

    reason: str
    message: str


@dataclass(frozen=True)
class SecretRequirement:
    """A Secret (and the keys in it) the pod's environment is filled from."""

    name: str
    keys: tuple[str, ...]
    purpose: str  # "venue credentials", "ledger DSN"


def ledger_secret(strategy: LiveStrategy, settings: OperatorSettings) -> tuple[str, str] | None:
    """(Secret name, key) of the ledger's PostgreSQL DSN: the spec's, else the operator's default."""
    ref = strategy.spec.ledger.dsn_secret
    if ref is not None:
        return ref.name, ref.key
    if settings.default_ledger_secret:
        return settings.default_ledger_secret, settings.default_ledger_secret_key
    return None


def gcs_bucket(strategy: LiveStrategy, settings: OperatorSettings) -> str | None:
    source = strategy.spec.data.catalog.gcs_fuse
    if source is None:
        return None
    return source.bucket or settings.default_gcs_bucket


def gcp_service_account(strategy: LiveStrategy, settings: OperatorSettings) -> str | None:
    if strategy.spec.pod.service_account_name:
        return None  # the user's own service account: theirs to annotate
    identity = strategy.spec.pod.workload_identity
    return identity.gcp_service_account if identity is not None else settings.default_gcp_service_account


def shares_identity(strategy: LiveStrategy, settings: OperatorSettings) -> bool:
    """Whether the pod runs as the namespace's shared identity: the operator shares it, and the strategy asks for no
    identity of its own (an account of its choosing, or a Google service account of its own to impersonate)."""
    pod = strategy.spec.pod
    return settings.runtime_identity == "shared" and not pod.service_account_name and pod.workload_identity is None


def spec_problems(strategy: LiveStrategy, settings: OperatorSettings) -> list[SpecProblem]:
    """What stops this spec from running in this namespace under these settings (no I/O)."""
    spec, namespace = strategy.spec, strategy.metadata.namespace or ""
    found: list[SpecProblem] = []
    if spec.mode == Mode.LIVE and not settings.live_allowed(namespace):
        allowed = ", ".join(settings.live_namespaces) or "none"
        found.append(
            SpecProblem(
                "LiveTradingNotAllowed",
                f"spec.mode is live, but this operator does not allow live trading in namespace {namespace!r} "
                f"(allowed: {allowed}; Helm value liveTrading.allowedNamespaces). No pod runs: use mode paper, "
                "or have the namespace allowed.",
            )
        )
    if spec.mode == Mode.LIVE and settings.promotion_required and spec.promotion is None:
        found.append(
            SpecProblem(
                "PromotionRequired",
                "spec.mode is live, and this operator runs a live strategy only through a promotion (Helm value "
                "liveTrading.requirePromotion): set spec.promotion.from to the paper strategy whose track record "
                "admits it (kubectl livestrat promote PAPER --to NAME; docs/promotion.md).",
            )
        )
    if spec.mode == Mode.LIVE and spec.venue.credentials_secret is None:
        found.append(
            SpecProblem(
                "CredentialsRequired",
                "spec.mode is live but spec.venue.credentialsSecret is not set: name the Secret holding the "
                "venue's API key and secret.",
            )
        )
    if spec.mode == Mode.LIVE and ledger_secret(strategy, settings) is None:
        found.append(
            SpecProblem(
                "LedgerRequired",
                "a live strategy records its fills in PostgreSQL, and neither spec.ledger.dsnSecret nor the "
                "operator's default ledger Secret (Helm value defaults.ledgerSecret) is set: set one.",
            )
        )
    code = spec.strategy.code
    source = code.kind if code is not None else CodeSourceKind.IMAGE
    if spec.mode == Mode.LIVE and source not in settings.live_code_sources:
        where = f"{code.field} ({code.describe()})" if code is not None else "the runtime image"
        found.append(
            SpecProblem(
                "CodeSourceNotAllowed",
                f"spec.mode is live and its code comes from {where}, but this operator lets live strategies take "
                f"code only from: {', '.join(settings.live_code_sources)} (operator setting "
                "LIVESTRAT_LIVE_CODE_SOURCES, Helm value liveTrading.codeSources). No pod runs: ship the code "
                "in the runtime image (spec.pod.image), or have the source allowed.",
            )
        )
    if spec.pod.image and not settings.image_allowed(spec.pod.image):
        found.append(
            SpecProblem(
                "ImageNotAllowed",
                f"spec.pod.image {spec.pod.image!r} is not under an image prefix this operator allows "
                f"({', '.join(settings.allowed_image_prefixes)}; operator setting LIVESTRAT_ALLOWED_IMAGE_PREFIXES): "
                "use an allowed image, or remove spec.pod.image to run the operator's default runtime image.",
            )
        )
    if spec.pod.service_account_name and not settings.allow_service_account_name:
        found.append(
            SpecProblem(
                "ServiceAccountNotAllowed",
                f"spec.pod.serviceAccountName {spec.pod.service_account_name!r} is set, but this operator does "
                "not let a strategy pod run as a service account of its choosing (operator setting "
                "LIVESTRAT_ALLOW_SERVICE_ACCOUNT_NAME): remove it (use spec.pod.workloadIdentity for Google "
                "access), or have the setting enabled.",
            )
        )
    if spec.data.catalog.gcs_fuse is not None and gcs_bucket(strategy, settings) is None:
        found.append(
            SpecProblem(
                "BucketRequired",
                "spec.data.catalog.gcsFuse.bucket is not set and the operator has no default bucket "
                "(Helm value defaults.gcsBucket): name the bucket that holds the catalog.",
            )
        )
    return found


def secret_requirements(strategy: LiveStrategy, settings: OperatorSettings) -> list[SecretRequirement]:
    """The Secrets (and keys) the pod needs; the operator checks they exist before starting it."""
    needed: list[SecretRequirement] = []
    credentials = strategy.spec.venue.credentials_secret
    if credentials is not None:
        keys = [credentials.api_key_key, credentials.api_secret_key]
        if credentials.passphrase_key:
            keys.append(credentials.passphrase_key)
        needed.append(SecretRequirement(credentials.name, tuple(keys), "venue credentials"))
    ledger = ledger_secret(strategy, settings)
    if ledger is not None:
        needed.append(SecretRequirement(ledger[0], (ledger[1],), "ledger DSN"))
    return needed
