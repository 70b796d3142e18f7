"""``LiveStrategy.spec``: what the user asks for.

Every field's ``description`` is user documentation: it becomes the CRD's description
(``kubectl explain livestrategy.spec...``) and a row of ``docs/api.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator

from livestrat.api.base import ApiModel, cel_rules
from livestrat.api.promotion import PromotionSpec
from livestrat.api.scheduling import Affinity, Toleration

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
IMPORT_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
INSTRUMENT_ID = r"^[^.\s]+(\.[^.\s]+)*\.[A-Za-z0-9_-]+$"
MONEY = r"^[0-9]+(\.[0-9]+)? [A-Z0-9]{2,12}$"
RATE = r"^[1-9][0-9]*/[0-9]{2}:[0-5][0-9]:[0-5][0-9]$"
QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
# Names a credential would have. Used to refuse credentials written inline anywhere
# they could end up in a ConfigMap.
CREDENTIAL_NAME = r"(?i)(api.?key|secret|passw|passphrase|token|private.?key)"

# spec.strategy.config, as compact JSON. The pod's configuration file (runtime.json, indented)
# holds it in a ConfigMap, limited to 1 MiB in all: this leaves room for up to four times as much
# indentation as data. The API server's CEL cannot see inside the free-form object to bound it.
CONFIG_MAX_BYTES = 256 * 1024
# Each of spec.strategy.execAlgorithms[].config (at most MAX_EXEC_ALGORITHMS): with the strategy's, within 1 MiB.
ALGORITHM_CONFIG_MAX_BYTES = 64 * 1024

TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


def _real_instant(value: str) -> str:
    # The pattern admits 2024-13-45T99:00:00Z; the API server's date-time format does not.
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not a real date and time (RFC 3339, for example 2024-03-01T00:00:00Z)") from None
    return value


Name = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
# An RFC 3339 instant. maxLength matters beyond tidiness: the API server prices CEL rules by
# the longest string a field may hold, and ignores patterns when it does.
Timestamp = Annotated[
    str,
    Field(pattern=TIMESTAMP, max_length=40, json_schema_extra={"format": "date-time"}),
    AfterValidator(_real_instant),
]
FreeForm = Annotated[
    dict[str, Any],
    Field(json_schema_extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]


class Mode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class Adapter(StrEnum):
    SANDBOX = "sandbox"
    BINANCE = "binance"
    BYBIT = "bybit"
    OKX = "okx"
    DERIBIT = "deribit"
    INTERACTIVE_BROKERS = "interactive_brokers"


# The adapters that trade for real (live mode); the CEL rule's message and the docs list them.
LIVE_ADAPTERS: tuple[Adapter, ...] = tuple(a for a in Adapter if a != Adapter.SANDBOX)
# Adapters whose public market data can feed a paper strategy (paper on a live feed, no keys): the
# runtime builds their data client without credentials and executes in the sandbox.
LIVE_FEED_ADAPTERS: tuple[Adapter, ...] = (Adapter.BINANCE,)
PAPER_ADAPTERS: tuple[Adapter, ...] = (Adapter.SANDBOX, *LIVE_FEED_ADAPTERS)


def _cel_list(values: tuple[str, ...]) -> str:
    return f"[{', '.join(repr(str(v)) for v in values)}]"


class AccountType(StrEnum):
    CASH = "cash"
    MARGIN = "margin"
    SPOT = "spot"
    USDT_FUTURES = "usdtFutures"
    COIN_FUTURES = "coinFutures"
    LINEAR = "linear"
    INVERSE = "inverse"
    SWAP = "swap"
    FUTURE = "future"
    OPTION = "option"
    FUTURE_COMBO = "futureCombo"
    OPTION_COMBO = "optionCombo"


# Which account types each adapter can trade; the CEL rule, its message and the field's
# description are all generated from this table.
ACCOUNT_TYPES: dict[Adapter, tuple[AccountType, ...]] = {
    Adapter.SANDBOX: (AccountType.CASH, AccountType.MARGIN),
    Adapter.BINANCE: (
        AccountType.SPOT,
        AccountType.MARGIN,
        AccountType.USDT_FUTURES,
        AccountType.COIN_FUTURES,
    ),
    Adapter.BYBIT: (AccountType.SPOT, AccountType.LINEAR, AccountType.INVERSE),
    Adapter.OKX: (AccountType.SPOT, AccountType.MARGIN, AccountType.SWAP),
    # Deribit's product types: one margin account trades them all, the type says which to load.
    Adapter.DERIBIT: (
        AccountType.FUTURE,
        AccountType.OPTION,
        AccountType.SPOT,
        AccountType.FUTURE_COMBO,
        AccountType.OPTION_COMBO,
    ),
    Adapter.INTERACTIVE_BROKERS: (AccountType.CASH, AccountType.MARGIN),
}


def _account_types_text() -> str:
    return "; ".join(f"{adapter}: {'|'.join(types)}" for adapter, types in ACCOUNT_TYPES.items())


def _account_type_rule() -> str:
    clauses = [
        f"(self.adapter == '{adapter}' && self.accountType in [{', '.join(repr(str(t)) for t in types)}])"
        for adapter, types in ACCOUNT_TYPES.items()
    ]
    return "!has(self.accountType) || " + " || ".join(clauses)


class OnBreach(StrEnum):
    SCALE_TO_ZERO = "ScaleToZero"
    HALT_IN_PLACE = "HaltInPlace"


class HaltPolicy(StrEnum):
    CANCEL_ORDERS = "cancelOrders"
    FLATTEN = "flatten"


class UpdatePolicy(StrEnum):
    AUTO = "Auto"
    MANUAL = "Manual"


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class ReplayDataType(StrEnum):
    BARS = "bars"
    QUOTES = "quotes"
    TRADES = "trades"


def _credential_keys(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if re.search(CREDENTIAL_NAME, str(key)):
                yield f"{path}.{key}"
            yield from _credential_keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _credential_keys(item, f"{path}[{index}]")


class ExecAlgorithmSource(ApiModel):
    """A NautilusTrader execution algorithm the strategy sends orders through (``exec_algorithm_id``)."""

    algorithm_path: str = Field(
        pattern=IMPORT_PATH,
        max_length=512,
        description="Import path of the ExecAlgorithm class, `package.module:ClassName`.",
        examples=["nautilus_trader.examples.algorithms.twap:TWAPExecAlgorithm"],
    )
    config_path: str = Field(
        pattern=IMPORT_PATH,
        max_length=512,
        description="Import path of the algorithm's ExecAlgorithmConfig class, `package.module:ClassName`.",
        examples=["nautilus_trader.examples.algorithms.twap:TWAPExecAlgorithmConfig"],
    )
    config: FreeForm = Field(
        default_factory=dict,
        description=(
            "Keyword arguments for the config class, exactly as it names them (`exec_algorithm_id` is the "
            "id the strategy's orders name; without it, the class's default). Checked as `strategy.config` "
            "is. Never credentials. At most 64 KiB as compact JSON."
        ),
    )

    @field_validator("config")
    @classmethod
    def _small(cls, config: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(config, separators=(",", ":")).encode())
        if size > ALGORITHM_CONFIG_MAX_BYTES:
            raise ValueError(f"is {size // 1024} KiB as compact JSON, at most {ALGORITHM_CONFIG_MAX_BYTES // 1024} KiB")
        return config


MAX_EXEC_ALGORITHMS = 8

# A directory inside a volume: relative, each segment starting with a letter, digit or underscore (so no
# "..", no ".", no hidden directory, never absolute), as a volumeMount's subPath takes it.
VOLUME_SUBDIRECTORY = r"^[A-Za-z0-9_][-A-Za-z0-9_.]*(/[A-Za-z0-9_][-A-Za-z0-9_.]*)*$"


class CodeSourceKind(StrEnum):
    """Where a strategy's code comes from; the operator's setting LIVESTRAT_LIVE_CODE_SOURCES lists these."""

    IMAGE = "image"
    CONFIG_MAP = "configMap"
    CATALOG_VOLUME = "catalogVolume"


class ConfigMapCode(ApiModel):
    """A ConfigMap in the strategy's namespace whose keys are Python files (``kubectl create configmap NAME
    --from-file=my_strategy.py``)."""

    name: Name = Field(description="Name of the ConfigMap. It must exist before the pod can start.")


class CatalogVolumeCode(ApiModel):
    """A directory of Python files on the volume the catalog comes from (`data.catalog`: a GCS bucket through FUSE,
    or a PersistentVolumeClaim)."""

    path: str = Field(
        pattern=VOLUME_SUBDIRECTORY,
        max_length=1024,
        description="Directory inside the catalog's volume, relative to what the volume mounts: for gcsFuse "
        "the bucket's directory `data.catalog.gcsFuse.path` (the bucket's root when empty), for a "
        "persistentVolumeClaim the claim's root. No `..` and no leading `/`.",
        examples=["strategies/ema_cross/v3"],
    )


class StrategyCode(ApiModel):
    """Where the Python files of the strategy come from, when not from the runtime image; exactly one source."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            {
                "rule": "[has(self.configMap), has(self.catalogVolume)].filter(x, x).size() == 1",
                "message": "set exactly one code source: configMap or catalogVolume (leave spec.strategy.code out "
                "to run code from the runtime image)",
                "reason": "FieldValueInvalid",
            }
        )
    }

    config_map: ConfigMapCode | None = Field(
        default=None,
        description="Python files from a ConfigMap (small strategies; a ConfigMap holds at most 1 MiB), mounted "
        "read-only in the pod.",
    )
    catalog_volume: CatalogVolumeCode | None = Field(
        default=None,
        description="Python files from a directory of the catalog's volume (a GCS bucket, a PVC), mounted "
        "read-only in the pod.",
    )

    @property
    def kind(self) -> CodeSourceKind:
        return CodeSourceKind.CONFIG_MAP if self.config_map is not None else CodeSourceKind.CATALOG_VOLUME

    @property
    def field(self) -> str:
        """The spec field that names this source, for messages."""
        return "spec.strategy.code.configMap" if self.config_map is not None else "spec.strategy.code.catalogVolume"

    def describe(self) -> str:
        """The source in words: ``ConfigMap NAME`` or ``directory PATH of the catalog's volume``."""
        if self.config_map is not None:
            return f"ConfigMap {self.config_map.name}"
        assert self.catalog_volume is not None
        return f"directory {self.catalog_volume.path} of the catalog's volume"


class StrategySource(ApiModel):
    """The NautilusTrader strategy the pod runs."""

    strategy_path: str = Field(
        pattern=IMPORT_PATH,
        max_length=512,
        description="Import path of the Strategy class, `package.module:ClassName`.",
        examples=["nautilus_trader.examples.strategies.ema_cross:EMACross"],
    )
    config_path: str = Field(
        pattern=IMPORT_PATH,
        max_length=512,
        description="Import path of the strategy's StrategyConfig class, `package.module:ClassName`.",
        examples=["nautilus_trader.examples.strategies.ema_cross:EMACrossConfig"],
    )
    config: FreeForm = Field(
        default_factory=dict,
        description=(
            "Keyword arguments for the config class, exactly as the strategy's "
            "StrategyConfig names them. Checked by the runtime when the pod starts; "
            "an error ends in the `InvalidSpec` condition. Never credentials: this object is "
            f"stored in a ConfigMap. At most {CONFIG_MAX_BYTES // 1024} KiB as compact JSON (checked by "
            "`livestrat validate` and the operator; the API server cannot see inside it)."
        ),
    )
    code: StrategyCode | None = Field(
        default=None,
        description="Where the strategy's Python files come from besides the runtime image: a ConfigMap or a "
        "directory of the catalog's volume, mounted read-only and put on the import path, so `strategyPath`, "
        "`configPath` and `execAlgorithms` may name modules there. Unset: the image. A live strategy takes code only "
        "from the sources the operator allows (setting LIVESTRAT_LIVE_CODE_SOURCES, Helm value "
        "liveTrading.codeSources; default: the image only). A change of the files does not restart a running "
        'strategy (docs/runtime.md, "Shipping strategy code").',
    )
    exec_algorithms: list[ExecAlgorithmSource] = Field(
        default_factory=list,
        max_length=MAX_EXEC_ALGORITHMS,
        description=(
            "Execution algorithms (NautilusTrader `ExecAlgorithm`s, such as TWAP) the node runs for the "
            "strategy, named by import path as the strategy is; the strategy's orders name one by its "
            "`exec_algorithm_id`. In paper mode and in `livestrat backtest` their timers run on market time."
        ),
    )

    @field_validator("config")
    @classmethod
    def _fits_its_configmap(cls, config: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(config, separators=(",", ":")).encode())
        if size > CONFIG_MAX_BYTES:
            raise ValueError(
                f"is {size // 1024} KiB as compact JSON, at most {CONFIG_MAX_BYTES // 1024} KiB: the pod's "
                "configuration file holds it (indented) in a ConfigMap, which Kubernetes limits to 1 MiB. "
                "Keep large data (tables, models) in the catalog or the image and give the strategy its path"
            )
        return config

    @model_validator(mode="after")
    def _no_inline_credentials(self) -> StrategySource:
        # The API server's CEL cannot see inside this free-form object, so the operator and
        # `livestrat validate` refuse it here, before it could reach a ConfigMap.
        found = sorted(_credential_keys(self.config, "config"))
        for i, algorithm in enumerate(self.exec_algorithms):
            found += sorted(_credential_keys(algorithm.config, f"execAlgorithms[{i}].config"))
        if found:
            raise ValueError(
                f"{', '.join(found)} looks like a credential; strategy config is stored in a "
                "ConfigMap: give the strategy its secrets through venue.credentialsSecret instead"
            )
        return self


class CredentialsSecretRef(ApiModel):
    """A Kubernetes Secret in the strategy's namespace holding venue API credentials."""

    name: Name = Field(description="Name of the Secret.")
    api_key_key: str = Field(
        default="api-key",
        pattern=SECRET_KEY,
        max_length=253,
        description="Key in the Secret holding the API key.",
    )
    api_secret_key: str = Field(
        default="api-secret",
        pattern=SECRET_KEY,
        max_length=253,
        description="Key in the Secret holding the API secret.",
    )
    passphrase_key: str | None = Field(
        default=None,
        pattern=SECRET_KEY,
        max_length=253,
        description="Key in the Secret holding the API passphrase (OKX needs one).",
    )


class Venue(ApiModel):
    """Where orders go: the sandbox (paper) or a real venue's NautilusTrader adapter (live)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            {
                "rule": _account_type_rule(),
                "message": f"accountType is not offered by this adapter ({_account_types_text()})",
                "fieldPath": ".accountType",
                "reason": "FieldValueInvalid",
            },
            {
                "rule": f"!has(self.options) || self.options.all(k, !k.matches('{CREDENTIAL_NAME}'))",
                "message": "credentials must not be written inline in options; store them in a "
                "Secret and reference it with venue.credentialsSecret",
                "fieldPath": ".options",
                "reason": "FieldValueForbidden",
            },
            {
                "rule": "self.adapter != 'sandbox' || has(self.name)",
                "message": "the sandbox adapter needs venue.name: the venue it simulates, "
                "which must be the venue of the instruments (for example BINANCE)",
                "fieldPath": ".name",
                "reason": "FieldValueRequired",
            },
        )
    }

    adapter: Adapter = Field(
        description="NautilusTrader adapter: `sandbox` simulates the venue for paper trading; "
        f"{', '.join(f'`{a}`' for a in LIVE_ADAPTERS)} trade for real; in paper mode "
        f"{', '.join(f'`{a}`' for a in LIVE_FEED_ADAPTERS)} feeds the sandbox with the venue's live market data.",
    )
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Z0-9_]{1,32}$",
        max_length=32,
        description="Venue identifier as it appears in instrument IDs (`BTCUSDT.BINANCE` → "
        "`BINANCE`). Required for `sandbox`; defaults to the adapter's own venue otherwise.",
        examples=["BINANCE"],
    )
    account_type: AccountType | None = Field(
        default=None,
        description=f"Account or product type, per adapter: {_account_types_text()}. Default: "
        "sandbox margin, binance spot, bybit linear, okx swap, deribit future, interactive_brokers margin.",
    )
    testnet: bool = Field(
        default=False,
        description="Use the venue's testnet or demo environment (live adapters).",
    )
    starting_balances: list[Annotated[str, Field(pattern=MONEY, max_length=64)]] | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="Paper account's starting balances, each `AMOUNT CURRENCY`. Required in "
        "paper mode, forbidden in live mode (the venue knows the real balance).",
        examples=[["100000 USDT"]],
    )
    # A map of strings rather than free-form: the API server's CEL cannot see inside
    # preserve-unknown-fields objects, and the no-credentials rule must hold in the cluster.
    options: dict[str, Annotated[str, Field(max_length=1024)]] | None = Field(
        default=None,
        max_length=64,
        description="Extra settings for the adapter's data and execution client configs, as "
        'strings converted to each setting\'s type (for example `use_reduce_only: "false"`). '
        "Never credentials.",
    )
    credentials_secret: CredentialsSecretRef | None = Field(
        default=None,
        description="Secret holding the API credentials. Required in live mode, forbidden "
        "in paper mode. Credentials never appear inline.",
    )


class GcsFuseSource(ApiModel):
    """A Google Cloud Storage bucket mounted through the GKE GCS FUSE CSI driver."""

    bucket: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][-_.a-z0-9]{1,220}[a-z0-9]$",
        description="Bucket name (without `gs://`). Default: the operator's default bucket "
        "(Helm value `defaults.gcsBucket`).",
        examples=["acme-market-data"],
    )
    path: str = Field(
        default="",
        max_length=1024,
        pattern=r"^([^/].*)?$",
        description="Directory inside the bucket that holds the ParquetDataCatalog "
        "(mounted with `only-dir`). Empty: the bucket's root.",
    )
    mount_options: list[Annotated[str, Field(max_length=256, pattern=r"^[-a-z0-9_:.=]+$")]] = Field(
        default_factory=lambda: ["implicit-dirs"],
        max_length=32,
        description="gcsfuse mount options, for example `implicit-dirs` or `file-cache:max-size-mb:1024`.",
    )
    read_only: bool = Field(default=True, description="Mount read-only.")


class PvcSource(ApiModel):
    """An existing PersistentVolumeClaim that holds the catalog."""

    claim_name: Name = Field(description="Name of the PersistentVolumeClaim.")
    path: str = Field(
        default="",
        max_length=1024,
        pattern=r"^([^/].*)?$",
        description="Directory inside the volume that holds the catalog.",
    )
    read_only: bool = Field(default=True, description="Mount read-only.")


class EmptyDirSource(ApiModel):
    """A scratch volume: the runtime writes `data.sample` into it at start."""

    size_limit: str | None = Field(
        default=None,
        pattern=QUANTITY,
        max_length=32,
        description="Size limit of the volume, a Kubernetes quantity such as `1Gi`.",
    )


class CatalogSource(ApiModel):
    """Where the NautilusTrader ParquetDataCatalog comes from; exactly one source."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            {
                "rule": "[has(self.gcsFuse), has(self.persistentVolumeClaim), has(self.emptyDir)]"
                ".filter(x, x).size() == 1",
                "message": "set exactly one catalog source: gcsFuse, persistentVolumeClaim or emptyDir",
                "reason": "FieldValueInvalid",
            }
        )
    }

    gcs_fuse: GcsFuseSource | None = Field(default=None, description="A GCS bucket through FUSE.")
    persistent_volume_claim: PvcSource | None = Field(default=None, description="A PVC.")
    empty_dir: EmptyDirSource | None = Field(
        default=None, description="An empty scratch volume (use with `data.sample`)."
    )


class ReplaySettings(ApiModel):
    """How a paper strategy replays historical data from the catalog."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            {
                "rule": "!has(self.start) || !has(self.end) || self.start < self.end",
                "message": "replay.start must be before replay.end",
                "fieldPath": ".start",
                "reason": "FieldValueInvalid",
            }
        )
    }

    speed: float = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Replay pace: 0 replays as fast as possible, 1 in real time, 60 a minute "
        "of market time per second.",
    )
    start: Timestamp | None = Field(
        default=None,
        description="First timestamp replayed (RFC 3339). Default: the catalog's first.",
    )
    end: Timestamp | None = Field(
        default=None,
        description="Last timestamp replayed (RFC 3339). Default: the catalog's last.",
    )
    data_types: list[ReplayDataType] = Field(
        default_factory=lambda: [ReplayDataType.BARS],
        min_length=1,
        max_length=3,
        description="Which catalog data to replay: bars, quotes, trades.",
    )


class SampleData(ApiModel):
    """A deterministic synthetic catalog, written when the catalog has no data yet."""

    bars: int = Field(default=2000, ge=100, le=1_000_000, description="Number of one-minute bars per instrument.")
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Random seed: same seed, same data.")
    start: Timestamp = Field(
        default="2024-01-01T00:00:00Z",
        description="Timestamp of the first bar.",
    )


class MarketData(ApiModel):
    """The catalog the strategy reads instruments and history from."""

    catalog: CatalogSource = Field(description="Where the catalog lives.")
    replay: ReplaySettings | None = Field(
        default=None,
        description="Paper mode on the sandbox adapter only, and required there: replay the catalog's history "
        "through the node. Paper on a live feed (venue.adapter: binance) takes its market data from the venue.",
    )
    sample: SampleData | None = Field(
        default=None,
        description="Write a deterministic synthetic catalog at start when the catalog holds "
        "no data for the instruments (for demos and tests).",
    )


class RiskLimits(ApiModel):
    """Pre-trade limits (NautilusTrader's RiskEngine) and post-trade limits (livestrat's guard)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            {
                "rule": "!self.maxOrderSubmitRate.endsWith('/00:00:00') && "
                "!self.maxOrderModifyRate.endsWith('/00:00:00')",
                "message": "an order rate's interval must be at least one second, e.g. 20/00:00:01",
                "fieldPath": ".maxOrderSubmitRate",
                "reason": "FieldValueInvalid",
            }
        )
    }

    max_notional_per_order: float | None = Field(
        default=None,
        gt=0,
        description="Pre-trade: largest notional a single order may have, in each "
        "instrument's quote currency. Larger orders are denied by the RiskEngine.",
    )
    max_order_submit_rate: str = Field(
        default="100/00:00:01",
        pattern=RATE,
        max_length=24,
        description="Pre-trade: most order submissions per interval, `LIMIT/HH:MM:SS`.",
    )
    max_order_modify_rate: str = Field(
        default="100/00:00:01",
        pattern=RATE,
        max_length=24,
        description="Pre-trade: most order modifications per interval, `LIMIT/HH:MM:SS`.",
    )
    max_daily_loss: float | None = Field(
        default=None,
        gt=0,
        description="Post-trade: halt when the day's PnL (UTC day, realized plus unrealized) "
        "falls below minus this amount, in the PnL currency.",
    )
    max_drawdown: float | None = Field(
        default=None,
        gt=0,
        description="Post-trade: halt when total PnL falls this far below its peak since start, in the PnL currency.",
    )
    max_position: float | None = Field(
        default=None,
        gt=0,
        description="Post-trade: halt when any instrument's absolute net position exceeds "
        "this quantity (in the instrument's base units).",
    )
    on_breach: OnBreach = Field(
        default=OnBreach.SCALE_TO_ZERO,
        description="After a post-trade breach the runtime halts trading; then "
        "`ScaleToZero` has the operator stop the pod (spec.replicas stays as it is and the "
        "`RiskHalted` condition holds it at 0), `HaltInPlace` keeps the pod running, halted, "
        "for inspection.",
    )


class WorkloadIdentity(ApiModel):
    """GKE Workload Identity for the operator-created Kubernetes service account."""

    gcp_service_account: str = Field(
        pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.]+\.iam\.gserviceaccount\.com$",
        description="Google service account to impersonate (`iam.gke.io/gcp-service-account` "
        "annotation on the strategy's Kubernetes service account).",
    )


# The strategy container's defaults (spec.pod.resources), and what a Guaranteed pod falls back on.
DEFAULT_CPU = "500m"
DEFAULT_MEMORY_LIMIT = "2Gi"


class ResourceRequirements(ApiModel):
    """CPU and memory for the strategy container, as Kubernetes quantities."""

    requests: dict[str, Annotated[str, Field(pattern=QUANTITY, max_length=32)]] | None = Field(
        default=None, max_length=8, description="Resource requests, for example `cpu: 500m`."
    )
    limits: dict[str, Annotated[str, Field(pattern=QUANTITY, max_length=32)]] | None = Field(
        default=None, max_length=8, description="Resource limits, for example `memory: 2Gi`."
    )


class PodSettings(ApiModel):
    """How the strategy pod runs."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            {
                "rule": "!(has(self.serviceAccountName) && has(self.workloadIdentity))",
                "message": "set either serviceAccountName (an existing service account you manage) "
                "or workloadIdentity (annotate the one livestrat creates), not both",
                "fieldPath": ".workloadIdentity",
                "reason": "FieldValueForbidden",
            }
        )
    }

    image: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^[^\s]+$",
        description="Runtime image. Default: the operator's configured runtime image.",
    )
    image_pull_policy: PullPolicy | None = Field(
        default=None,
        description="Image pull policy. Default: the operator's runtime image pull policy.",
    )
    resources: ResourceRequirements = Field(
        default_factory=lambda: ResourceRequirements(
            requests={"cpu": DEFAULT_CPU, "memory": "1Gi"}, limits={"memory": DEFAULT_MEMORY_LIMIT}
        ),
        description="Container resources. Setting this replaces the whole default (requests cpu 500m, "
        "memory 1Gi; limits memory 2Gi): give limits too. Under guaranteedQos each of cpu and memory gets "
        "its limit (else its request, else the default's) as both request and limit.",
    )
    guaranteed_qos: bool | None = Field(
        default=None,
        description="Give every container of the pod (the GCS FUSE sidecar included) requests equal to limits "
        "for cpu and memory: Kubernetes' Guaranteed QoS class, the last evicted under node pressure, with the "
        "CPU it asks for. Default: true for mode live, false for paper.",
    )
    termination_grace_period_seconds: int = Field(
        default=60,
        ge=15,
        le=3600,
        description="Seconds Kubernetes waits after SIGTERM. The runtime cancels orders, "
        "applies haltPolicy, flushes the ledger and reports within this minus a safety margin.",
    )
    priority_class_name: Name | None = Field(
        default=None,
        description="PriorityClass of the pod: a higher priority keeps it from being preempted by the scheduler "
        "for other pods, and places it first when capacity is short.",
    )
    node_selector: dict[str, str] | None = Field(
        default=None,
        description="Node labels the pod requires, for example a node pool that is not preemptible "
        '(`cloud.google.com/gke-spot: "false"`).',
    )
    affinity: Affinity | None = Field(
        default=None, description="Kubernetes affinity (node, pod, anti-affinity), passed to the pod as written."
    )
    tolerations: list[Toleration] | None = Field(
        default=None,
        description="Kubernetes tolerations (a dedicated node pool's taints), passed to the pod as written.",
    )
    service_account_name: Name | None = Field(
        default=None,
        description="Run as this existing Kubernetes service account (for example one bound "
        "for Workload Identity). livestrat then only binds its status Role to it.",
    )
    workload_identity: WorkloadIdentity | None = Field(
        default=None,
        description="Annotate the service account livestrat creates for GKE Workload Identity.",
    )


class SecretKeyRef(ApiModel):
    """One key of a Kubernetes Secret in the strategy's namespace."""

    name: Name = Field(description="Name of the Secret.")
    key: str = Field(default="dsn", pattern=SECRET_KEY, max_length=253, description="Key in the Secret.")


class LedgerSettings(ApiModel):
    """Where fills are recorded."""

    dsn_secret: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding a PostgreSQL DSN (`postgresql://user:pass@host/db`). "
        "Default: the operator's default ledger Secret; without one a paper strategy keeps "
        "its ledger in SQLite on the pod's scratch volume (lost with the pod). Live "
        "strategies need PostgreSQL.",
    )


class TwinSpec(ApiModel):
    """A paper twin: the live strategy's own spec run in the sandbox on the venue's public market data."""

    starting_balances: list[Annotated[str, Field(pattern=MONEY, max_length=64)]] = Field(
        min_length=1,
        max_length=16,
        description="The twin's simulated account balances, each `AMOUNT CURRENCY` (the live account's are the "
        "venue's): give it what the live strategy trades with, so that both size their orders alike.",
        examples=[["100000 USDT"]],
    )


class LiveStrategySpec(ApiModel):
    """The desired state of one trading strategy."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            {
                "rule": f"self.mode != 'paper' || self.venue.adapter in {_cel_list(PAPER_ADAPTERS)}",
                "message": "paper mode trades in the sandbox: on a catalog's replay (venue.adapter: sandbox) or on a "
                f"live feed of the venue's public market data (venue.adapter: {', '.join(LIVE_FEED_ADAPTERS)})",
                "fieldPath": ".venue.adapter",
                "reason": "FieldValueInvalid",
            },
            {
                "rule": "self.mode != 'live' || self.venue.adapter != 'sandbox'",
                "message": f"live mode needs a venue adapter ({', '.join(LIVE_ADAPTERS)})",
                "fieldPath": ".venue.adapter",
                "reason": "FieldValueInvalid",
            },
            {
                "rule": "self.mode != 'paper' || self.venue.adapter == 'sandbox' || "
                "(!has(self.data.replay) && !has(self.data.sample))",
                "message": "paper on a live feed takes its market data from the venue: data.replay and data.sample "
                "replay a catalog, on venue.adapter: sandbox",
                "fieldPath": ".data",
                "reason": "FieldValueForbidden",
            },
            {
                "rule": "self.mode != 'live' || has(self.venue.credentialsSecret)",
                "message": "live mode requires venue.credentialsSecret: the name of a Secret "
                "holding the API key and secret",
                "fieldPath": ".venue.credentialsSecret",
                "reason": "FieldValueRequired",
            },
            {
                "rule": "self.mode != 'paper' || !has(self.venue.credentialsSecret)",
                "message": "paper mode must not reference venue credentials",
                "fieldPath": ".venue.credentialsSecret",
                "reason": "FieldValueForbidden",
            },
            {
                "rule": "self.mode != 'paper' || has(self.venue.startingBalances)",
                "message": "paper mode requires venue.startingBalances, for example ['100000 USDT']",
                "fieldPath": ".venue.startingBalances",
                "reason": "FieldValueRequired",
            },
            {
                "rule": "self.mode != 'paper' || self.venue.adapter != 'sandbox' || has(self.data.replay)",
                "message": "paper mode on the sandbox adapter requires data.replay (for example data.replay: "
                "{speed: 0}): the sandbox has no market of its own (for a live feed, set venue.adapter to the venue)",
                "fieldPath": ".data.replay",
                "reason": "FieldValueRequired",
            },
            {
                "rule": "self.mode != 'live' || !has(self.venue.startingBalances)",
                "message": "live mode must not set venue.startingBalances: the venue reports the balance",
                "fieldPath": ".venue.startingBalances",
                "reason": "FieldValueForbidden",
            },
            {
                "rule": "self.mode != 'live' || !has(self.data.replay)",
                "message": "data.replay is for paper mode only; a live strategy trades on live data",
                "fieldPath": ".data.replay",
                "reason": "FieldValueForbidden",
            },
            {
                "rule": "self.mode != 'live' || !has(self.data.sample)",
                "message": "data.sample writes synthetic data: paper mode only",
                "fieldPath": ".data.sample",
                "reason": "FieldValueForbidden",
            },
            {
                "rule": "self.mode != 'live' || (has(self.risk.maxDailyLoss) && "
                "has(self.risk.maxPosition) && has(self.risk.maxNotionalPerOrder))",
                "message": "live mode requires risk.maxDailyLoss, risk.maxPosition and "
                "risk.maxNotionalPerOrder: real money does not trade without limits",
                "fieldPath": ".risk",
                "reason": "FieldValueRequired",
            },
            {
                "rule": "!has(self.strategy.code) || !has(self.strategy.code.catalogVolume) || "
                "!has(self.data.catalog.emptyDir)",
                "message": "strategy.code.catalogVolume reads code from the catalog's volume, and an emptyDir catalog "
                "starts empty: use data.catalog.gcsFuse or persistentVolumeClaim, or strategy.code.configMap",
                "fieldPath": ".strategy.code.catalogVolume",
                "reason": "FieldValueForbidden",
            },
            {
                "rule": "self.mode == 'live' || !has(self.promotion)",
                "message": "promotion admits a live strategy from a paper one: set it on the live strategy "
                "(mode: live)",
                "fieldPath": ".promotion",
                "reason": "FieldValueForbidden",
            },
            {
                "rule": "self.mode == 'live' || !has(self.twin)",
                "message": "a paper twin runs beside a live strategy: set spec.twin on the live one (mode: live)",
                "fieldPath": ".twin",
                "reason": "FieldValueForbidden",
            },
            {
                "rule": f"!has(self.twin) || self.venue.adapter in {_cel_list(LIVE_FEED_ADAPTERS)}",
                "message": "a paper twin trades on the venue's public market data, which livestrat reads from "
                f"{', '.join(LIVE_FEED_ADAPTERS)} only: remove spec.twin, or trade on "
                f"{', '.join(LIVE_FEED_ADAPTERS)}",
                "fieldPath": ".twin",
                "reason": "FieldValueForbidden",
            },
            {
                "rule": "self.venue.adapter != 'sandbox' || !has(self.venue.name) || "
                "self.instruments.all(i, i.endsWith('.' + self.venue.name))",
                "message": "every instrument must be on the simulated venue (venue.name)",
                "fieldPath": ".instruments",
                "reason": "FieldValueInvalid",
            },
        )
    }

    replicas: int = Field(
        default=1,
        ge=0,
        le=1,
        description="1 runs the strategy, 0 halts it (`kubectl scale --replicas=0`). Never more "
        "than one: two copies of a strategy would place double orders.",
    )
    mode: Mode = Field(
        default=Mode.PAPER,
        description="`paper` simulates fills in the sandbox (on a catalog's replay, or on the venue's live "
        "market data); `live` sends real orders (the operator must also allow live trading in this namespace).",
    )
    strategy: StrategySource = Field(description="The strategy class and its configuration.")
    venue: Venue = Field(description="Where orders go.")
    instruments: list[Annotated[str, Field(pattern=INSTRUMENT_ID, max_length=128)]] = Field(
        min_length=1,
        max_length=64,
        description="Instrument IDs to load from the catalog (or the venue), `SYMBOL.VENUE`.",
        examples=[["BTCUSDT.BINANCE"]],
    )
    data: MarketData = Field(description="Market data catalog and replay.")
    risk: RiskLimits = Field(default_factory=RiskLimits, description="Risk limits.")
    halt_policy: HaltPolicy = Field(
        default=HaltPolicy.CANCEL_ORDERS,
        description="What a halt does besides stopping: `cancelOrders` cancels every open "
        "order; `flatten` also closes every position with market orders.",
    )
    update_policy: UpdatePolicy = Field(
        default=UpdatePolicy.AUTO,
        description="`Auto` restarts the pod on a spec change; `Manual` leaves a running "
        "strategy alone and sets `ConfigDrift` until restartNonce changes or it is halted "
        "and resumed.",
    )
    restart_nonce: str | None = Field(
        default=None,
        max_length=63,
        description="Change this value to restart the strategy pod (applies pending changes under `Manual`).",
    )
    pod: PodSettings = Field(default_factory=PodSettings, description="Pod settings.")
    ledger: LedgerSettings = Field(default_factory=LedgerSettings, description="Fills ledger.")
    promotion: PromotionSpec | None = Field(
        default=None,
        description="Live mode: run only once the paper strategy named here has a track record meeting these "
        "criteria, as the operator finds and records it in `status.promotion` (docs/promotion.md). Never restarts "
        "a running pod: it is not part of the pod's configuration.",
    )
    twin: TwinSpec | None = Field(
        default=None,
        description="Live mode: keep a paper twin, the LiveStrategy `NAME-twin` running this spec in the sandbox on "
        "the venue's public market data, which the operator creates, keeps equal to this spec (its own edits are "
        "undone), halts and resumes with this one (`replicas`) and deletes when this field goes. The desk shows live "
        "and twin side by side (PnL, slippage, fill rate). Never restarts the live pod (docs/promotion.md).",
    )
