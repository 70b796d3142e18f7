"""Operator settings: what the Helm chart's values become, read from the environment.

The chart sets one environment variable per setting (names below); ``livestrat operator``
reads them at start. A wrong value stops the operator at start with a message naming the
variable, rather than half-working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from livestrat.api.spec import DNS_LABEL

# Environment variable → field. The chart's templates/deployment.yaml sets exactly these.
ENVIRONMENT = {
    "LIVESTRAT_WATCH_NAMESPACES": "watch_namespaces",
    "LIVESTRAT_LIVE_NAMESPACES": "live_namespaces",
    "LIVESTRAT_RUNTIME_IMAGE": "runtime_image",
    "LIVESTRAT_RUNTIME_IMAGE_PULL_POLICY": "runtime_image_pull_policy",
    "LIVESTRAT_DEFAULT_LEDGER_SECRET": "default_ledger_secret",
    "LIVESTRAT_DEFAULT_LEDGER_SECRET_KEY": "default_ledger_secret_key",
    "LIVESTRAT_DEFAULT_GCS_BUCKET": "default_gcs_bucket",
    "LIVESTRAT_DEFAULT_GCP_SERVICE_ACCOUNT": "default_gcp_service_account",
    "LIVESTRAT_STALE_AFTER_SECONDS": "stale_after_seconds",
    "LIVESTRAT_LOG_LEVEL": "log_level",
    "LIVESTRAT_PEERING": "peering",
    "LIVESTRAT_PRIORITY": "priority",
    "LIVESTRAT_METRICS_PORT": "metrics_port",
    "LIVESTRAT_HEALTH_PORT": "health_port",
    "LIVESTRAT_START_TIMEOUT_SECONDS": "start_timeout_seconds",
    "LIVESTRAT_HALT_TIMEOUT_MARGIN_SECONDS": "halt_timeout_margin_seconds",
    "LIVESTRAT_MAX_CONCURRENT_RECONCILES": "max_concurrent_reconciles",
}

Namespace = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]


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
    runtime_image: str = Field(
        default="ghcr.io/livestrat/livestrat-runtime:0.1.0",
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
    priority: int = Field(
        default=0,
        description="Peering priority of this replica; the highest acts. 0 with peering: a random priority "
        "per process, so that the replicas of one Deployment never tie (a tie pauses them all).",
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

    @field_validator("watch_namespaces", "live_namespaces", mode="before")
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

    def live_allowed(self, namespace: str) -> bool:
        return namespace in self.live_namespaces

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
