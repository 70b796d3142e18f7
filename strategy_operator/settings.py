"""Operator settings: what the Helm chart's values become, read from the environment.

The chart sets one environment variable per setting, ``LIVESTRAT_`` and the field's name in
capitals; ``livestrat operator`` reads them at start. A wrong value stops the operator at start
with a message naming the variable, rather than half-working.

Why not pydantic-settings: it reads ``os.environ`` only, and the settings are also read from
a given mapping (the chart's rendered environment, in the chart's tests); a source over a
mapping means overriding a private method of its ``EnvSettingsSource``, and its list fields
expect JSON (the chart passes comma-separated namespaces). Deriving the variable names from
the fields gives what it would give here, without that.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from livestrat.api.runtime_config import DEFAULT_HTTP_HOST, ListenAddress
from livestrat.api.spec import DNS_LABEL, CodeSourceKind

# Every setting is the environment variable LIVESTRAT_<FIELD NAME> (see ENVIRONMENT, derived from the
# fields below); the chart's templates/deployment.yaml sets exactly these.
ENV_PREFIX = "LIVESTRAT_"
# With peering, a replica's priority is this minus its ordinal: replica 0 acts, replica 1 stands by.
PEERING_PRIORITY_BASE = 1000
# An image prefix ends at one of these (or the prefix itself ends with one): "registry.example.com/acme"
# allows "registry.example.com/acme/runtime:1" and "registry.example.com/acme:1", never
# "registry.example.com/acme-evil/runtime:1".
IMAGE_REFERENCE_SEPARATORS = "/:@"

Namespace = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
# The chart's default runtime image (runtime.image, tagged with the chart's appVersion: this
# package's version), for an operator run without the chart.
DEFAULT_RUNTIME_IMAGE = f"livestrat/livestrat-runtime:{version('livestrat')}"


class SettingsError(ValueError):
    """A setting has a value the operator cannot use."""


class OperatorSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    watch_namespaces: list[Namespace] = Field(
        default_factory=list, description="Namespaces to watch; empty: all namespaces."
    )
    live_namespaces: list[Namespace] = Field(
        default_factory=list,
        description="Namespaces where `mode: live` strategies may run. Empty: live trading nowhere.",
    )
    live_code_sources: list[CodeSourceKind] = Field(
        default_factory=lambda: [CodeSourceKind.IMAGE],
        min_length=1,
        description="Where a `mode: live` strategy may take its code from: image (the runtime image), configMap "
        "(spec.strategy.code.configMap), catalogVolume (spec.strategy.code.catalogVolume). Paper strategies may use "
        "any. Default: the image only, the one source that is reviewed and pinned as an image is.",
    )
    promotion_required: bool = Field(
        default=False,
        description="A `mode: live` strategy runs only through a promotion from a paper strategy (spec.promotion): "
        "without one it gets no pod (docs/promotion.md).",
    )
    runtime_image: str = Field(
        default=DEFAULT_RUNTIME_IMAGE,
        min_length=1,
        description="Image of strategy pods unless a LiveStrategy sets spec.pod.image.",
    )
    runtime_image_pull_policy: str = Field(default="IfNotPresent", pattern=r"^(Always|IfNotPresent|Never)$")
    default_ledger_secret: str | None = Field(
        default=None, description="Secret with a PostgreSQL DSN for strategies that name no ledger."
    )
    default_ledger_secret_key: str = Field(default="dsn", description="Key of the DSN in that Secret.")
    default_gcs_bucket: str | None = Field(default=None, description="Bucket for gcsFuse catalogs that name none.")
    default_gcp_service_account: str | None = Field(
        default=None, description="Google service account for Workload Identity when a strategy names none."
    )
    stale_after_seconds: float = Field(
        default=60.0, ge=5, description="A runtime heartbeat older than this sets the Stale condition."
    )
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    peering: str | None = Field(
        default=None, description="kopf peering name for HA (two replicas, one acts); None: standalone."
    )
    priority: int | None = Field(
        default=None,
        description="Peering priority of this replica, as kopf takes it (the highest acts). Unset: "
        "derived from replica_ordinal.",
    )
    replica_ordinal: int | None = Field(
        default=None,
        ge=0,
        lt=PEERING_PRIORITY_BASE,
        description="This replica's ordinal in the operator's StatefulSet (the chart passes the pod-index label); "
        f"with peering and no explicit priority, the priority is {PEERING_PRIORITY_BASE} minus it: replica 0 acts.",
    )
    http_host: ListenAddress = Field(
        default=DEFAULT_HTTP_HOST,
        description="Address the operator's /metrics and /healthz listen on: an IP address, :: for every IPv6 "
        "address (IPv6 only), 0.0.0.0 for every IPv4 address.",
    )
    runtime_http_host: ListenAddress = Field(
        default=DEFAULT_HTTP_HOST,
        description="Address strategy pods' /healthz, /readyz, /metrics and /state listen on (their runtime.json's "
        "httpHost), as http_host; the kubelet's probes and Prometheus reach them on the pod's IP.",
    )
    metrics_port: int = Field(default=8080, ge=1, le=65535, description="Port of the operator's /metrics.")
    health_port: int = Field(default=8081, ge=1, le=65535, description="Port of the operator's /healthz.")
    start_timeout_seconds: float = Field(
        default=600.0,
        ge=1,
        description="A strategy pod that is not ready this long after it was created turns the phase to Failed.",
    )
    halt_timeout_margin_seconds: float = Field(
        default=30.0,
        ge=0,
        description="A halt (or a deletion) waits for the pod at most its terminationGracePeriodSeconds plus "
        "this; then the phase is Failed (a halt) or the LiveStrategy is released anyway (a deletion).",
    )
    max_concurrent_reconciles: int = Field(
        default=16, ge=1, le=512, description="LiveStrategies reconciled at the same time."
    )
    allowed_image_prefixes: list[str] = Field(
        default_factory=list,
        description="spec.pod.image must start with one of these (a registry, a repository); empty: any image.",
    )
    runtime_identity: Literal["shared", "perStrategy"] = Field(
        default="perStrategy",
        description="How strategy pods authenticate to report their status. perStrategy: a ServiceAccount, Role and "
        "RoleBinding for each strategy (the Role names its LiveStrategy). shared: one ServiceAccount, Role and "
        "RoleBinding per namespace (livestrat-runtime), three writes fewer per strategy; only where the chart's "
        "runtime-identity ValidatingAdmissionPolicy narrows each status patch to the pod's own strategy (the chart "
        "sets this; without that policy the shared Role would let a pod patch any strategy's status).",
    )
    allow_service_account_name: bool = Field(
        default=False,
        description="Whether a LiveStrategy may run its pod as an existing service account of its choosing "
        "(spec.pod.serviceAccountName). Off: every strategy pod runs as the service account livestrat creates.",
    )

    @field_validator(
        "watch_namespaces", "live_namespaces", "allowed_image_prefixes", "live_code_sources", mode="before"
    )
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> OperatorSettings:
        if self.metrics_port == self.health_port:
            raise ValueError("metrics_port and health_port must differ")
        return self

    @model_validator(mode="after")
    def _peering_priority(self) -> OperatorSettings:
        if self.peering and self.priority is None and self.replica_ordinal is None:
            raise ValueError(
                "with peering (LIVESTRAT_PEERING), each replica needs its own priority: set LIVESTRAT_REPLICA_ORDINAL "
                "(the chart sets it from the pod's ordinal) or LIVESTRAT_PRIORITY (distinct per replica)"
            )
        return self

    def live_allowed(self, namespace: str) -> bool:
        return namespace in self.live_namespaces

    def image_allowed(self, image: str) -> bool:
        """Whether a strategy may run this image: no prefixes configured, or it starts with one of them."""
        if not self.allowed_image_prefixes:
            return True
        for prefix in self.allowed_image_prefixes:
            if image == prefix:
                return True
            if image.startswith(prefix) and (
                prefix[-1] in IMAGE_REFERENCE_SEPARATORS or image[len(prefix)] in IMAGE_REFERENCE_SEPARATORS
            ):
                return True
        return False

    def peering_priority(self) -> int:
        """kopf's priority for this replica: the explicit one, else ``PEERING_PRIORITY_BASE`` minus the ordinal
        (deterministic: replica 0 acts, replica 1 takes over when it is gone); 0 without either (standalone)."""
        if self.priority is not None:
            return self.priority
        if self.replica_ordinal is not None:
            return PEERING_PRIORITY_BASE - self.replica_ordinal
        return 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OperatorSettings:
        raw = {field: environ[name] for name, field in ENVIRONMENT.items() if environ.get(name, "") != ""}
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            by_field = {field: name for name, field in ENVIRONMENT.items()}
            lines = [
                f"{by_field.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}" if err["loc"] else err["msg"]
                for err in exc.errors()
            ]
            raise SettingsError("invalid operator settings:\n  " + "\n  ".join(lines)) from None


# Environment variable → field.
ENVIRONMENT = {f"{ENV_PREFIX}{name.upper()}": name for name in OperatorSettings.model_fields}
