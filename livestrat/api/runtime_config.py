"""The contract between the operator and the strategy pod.

The operator renders a ``RuntimeConfig`` into the strategy's ConfigMap (``runtime.json``);
the runtime reads it at start. It never holds a secret: credentials and the ledger DSN reach
the pod only as environment variables filled by ``secretKeyRef``, under the names below.
``livestrat run`` builds the same object from a manifest for a local paper run.
"""

from __future__ import annotations

import ipaddress
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError

from livestrat.api.base import ApiModel
from livestrat.api.spec import LiveStrategySpec

CONFIG_FILE_NAME = "runtime.json"
CONFIG_MOUNT_DIR = "/etc/livestrat"
CATALOG_MOUNT_DIR = "/data/catalog"
# Where spec.strategy.code is mounted (read-only): the runtime appends it to the import path.
CODE_MOUNT_DIR = "/opt/strategy-code"
STATE_DIR = "/var/lib/livestrat"
HTTP_PORT = 8080
# What the runtime's endpoints (and the operator's) listen on unless told otherwise: every IPv4 address.
DEFAULT_HTTP_HOST = "0.0.0.0"

# Environment variables the operator fills from Secrets (secretKeyRef) and the runtime reads.
ENV_API_KEY = "LIVESTRAT_VENUE_API_KEY"
ENV_API_SECRET = "LIVESTRAT_VENUE_API_SECRET"
ENV_API_PASSPHRASE = "LIVESTRAT_VENUE_API_PASSPHRASE"
ENV_LEDGER_DSN = "LIVESTRAT_LEDGER_DSN"
SECRET_ENV_VARS = (ENV_API_KEY, ENV_API_SECRET, ENV_API_PASSPHRASE, ENV_LEDGER_DSN)

# With nothing else to report, the runtime still pushes its heartbeat this often; the
# operator should call a strategy Stale only after several missed heartbeats.
HEARTBEAT_INTERVAL_SECONDS = 10.0

# A ledger this far behind holds new orders (fills must be recorded before more risk is taken).
LEDGER_HOLD_PENDING_FILLS = 1000
LEDGER_HOLD_LAG_SECONDS = 10.0

# The halt must be over before Kubernetes sends SIGKILL: keep a margin of a fifth of the
# grace period, at least 5 s, for the process to exit and the kubelet to notice.
MIN_HALT_MARGIN_SECONDS = 5.0


def halt_budget_seconds(termination_grace_period_seconds: int) -> float:
    """Seconds the runtime allows itself, from SIGTERM, to cancel, flatten, flush, report and exit."""
    grace = float(termination_grace_period_seconds)
    return grace - max(MIN_HALT_MARGIN_SECONDS, grace / 5)


def listen_address(value: str) -> str:
    """An address an HTTP server can listen on: an IP address as written (IPv4, or IPv6 without brackets)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address to listen on: give one of the pod's addresses, 0.0.0.0 (every IPv4 "
            "address) or :: (every IPv6 address), without brackets or a port"
        ) from None


ListenAddress = Annotated[str, AfterValidator(listen_address)]


def host_and_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets (as in a URL)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class LedgerKind(StrEnum):
    POSTGRESQL = "postgresql"
    SQLITE = "sqlite"


class StrategyIdentity(ApiModel):
    """Which LiveStrategy this runtime is: the key of its ledger rows and of its status."""

    namespace: str = Field(description="Namespace of the LiveStrategy.")
    name: str = Field(description="Name of the LiveStrategy.")
    uid: str | None = Field(default=None, description="UID of the LiveStrategy (None in local runs).")

    @property
    def key(self) -> str:
        """Stable ledger key: namespace/name (a re-created resource continues its ledger)."""
        return f"{self.namespace}/{self.name}"


class LedgerTarget(ApiModel):
    kind: LedgerKind = Field(description="postgresql (DSN from the environment) or sqlite (file).")
    sqlite_path: str | None = Field(default=None, description="SQLite file, for kind sqlite.")


class RuntimeConfig(ApiModel):
    """Everything a strategy runtime needs to start, except secrets."""

    strategy: StrategyIdentity
    spec: LiveStrategySpec
    generation: int | None = Field(default=None, description="metadata.generation rendered.")
    catalog_path: str = Field(default=CATALOG_MOUNT_DIR, description="Directory of the ParquetDataCatalog.")
    state_dir: str = Field(default=STATE_DIR, description="Writable directory for local state.")
    code_path: str | None = Field(
        default=None,
        description="Directory holding spec.strategy.code's Python files, appended to the import path before the "
        "strategy is imported. None: the strategy's code is in the image.",
    )
    ledger: LedgerTarget = Field(description="Where fills are recorded.")
    http_host: ListenAddress | None = Field(
        default=None,
        description="Address /healthz, /readyz, /metrics and /state listen on: an IP address, :: for every IPv6 "
        f"address. None: {DEFAULT_HTTP_HOST} (every IPv4 address).",
    )
    http_port: int = Field(default=HTTP_PORT, description="Port of /healthz, /readyz, /metrics, /state.")
    report_status: bool = Field(default=True, description="Push trading state into the LiveStrategy status.")
    report_interval_seconds: float = Field(default=1.0, gt=0, description="Least time between status pushes.")
    heartbeat_interval_seconds: float = Field(
        default=HEARTBEAT_INTERVAL_SECONDS,
        gt=0,
        description="Longest time without a status push: with nothing else to report, the runtime "
        "still patches status.trading.heartbeat this often (the operator's staleness check reads it).",
    )
    risk_acknowledgement: str | None = Field(
        default=None,
        description="The value of the LiveStrategy's livestrat.io/risk-acknowledged annotation. A risk halt "
        "persisted in the ledger keeps the strategy halted across restarts until it starts with an "
        "acknowledgement different from the one in force when the halt happened.",
    )
    halt_budget_seconds: float = Field(gt=0, description="Time allowed for a halt, from SIGTERM to exit.")
    window_check_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Paper on a live feed: how often the recorded window is backtested and compared with the "
        "paper fills (status.trading.backtest), besides once at a clean stop.",
    )
    fence_wait_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a starting runtime waits for the ledger fence before refusing to trade: long "
        "enough for the database to end a vanished predecessor's session (about 25 s, see docs/ledger.md).",
    )
    ledger_hold_pending_fills: int = Field(
        default=LEDGER_HOLD_PENDING_FILLS,
        gt=0,
        description="New orders are held (denied, not a breach) while more fills than this wait to be "
        "committed to the ledger, and pass again once it is back under half of it.",
    )
    ledger_hold_lag_seconds: float = Field(
        default=LEDGER_HOLD_LAG_SECONDS,
        gt=0,
        description="New orders are held while the oldest fill not yet committed to the ledger is older "
        "than this, and pass again once it is back under half of it.",
    )
    log_level: str = Field(default="INFO", description="Log level of the runtime and its node.")

    @property
    def http_bind_host(self) -> str:
        """The address the endpoints listen on (``http_host``, else every IPv4 address)."""
        return self.http_host or DEFAULT_HTTP_HOST

    def dumps(self) -> str:
        """``runtime.json``: every field that is not at its default, and no other.

        Within an API version a field is added only with a default that keeps the behaviour from before
        it, so a runtime image older than the operator reads every configuration that uses nothing it
        lacks; one that does use a field it does not know, it refuses (:meth:`load`)."""
        document = self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
        return json.dumps(document, indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: Path) -> RuntimeConfig:
        """Strictly: a field this runtime does not know is an error, never ignored (it may be a limit)."""
        return cls.model_validate_json(path.read_text())

    @classmethod
    def complete(cls, document: dict[str, Any]) -> dict[str, Any]:
        """A ``runtime.json`` document with every default written out, as this version reads it: what an
        operator compares, whichever version wrote it. The document as it is when this version cannot read it
        (one written by a newer operator, or damaged)."""
        try:
            config = cls.model_validate(document)
        except ValidationError:
            return document
        return config.model_dump(mode="json", by_alias=True, exclude_none=True)
