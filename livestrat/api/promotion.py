"""Promotion from paper to live: ``LiveStrategy.spec.promotion`` and ``status.promotion``.

A live strategy that names a paper strategy in ``spec.promotion.from`` gets a pod only once the
operator has found the paper strategy's track record (its status) meeting every criterion written
here, and has recorded that finding in ``status.promotion`` (state ``Accepted``). The decision is
the operator's, from the paper strategy's status (written by that strategy's runtime and the
operator, which traders cannot write), so no client can promote by writing a figure of its own.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field

from livestrat.api.base import ApiModel

PAPER_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class PromotionCriteria(ApiModel):
    """What the paper strategy's track record must show before the live strategy may run."""

    min_duration_seconds: int = Field(
        default=86400,
        ge=0,
        le=366 * 86400,
        description="The paper strategy must have been trading (its `Trading` condition True) for at least this "
        "long, without a stop, in its current run.",
    )
    min_fills: int = Field(
        default=1,
        ge=0,
        description="At least this many fills in the paper strategy's current run (`status.trading.fills`).",
    )
    max_backtest_mismatches: int | None = Field(
        default=None,
        ge=0,
        description="The paper strategy's fills must agree with a NautilusTrader backtest of the same spec over the "
        "same data (`status.trading.backtest`: its runtime runs one when its replay finishes; on a live feed, over "
        "the window it recorded, hourly and at a clean stop): at most this many fills only in one of them or "
        "differing in side, quantity or price.",
    )
    max_drawdown: float | None = Field(
        default=None,
        gt=0,
        description="The largest drawdown the paper strategy's runtime saw in its current run "
        "(`status.risk.maxDrawdown`) must stay below this amount, in the PnL currency. The paper strategy must "
        "watch its PnL for it (set its `risk.maxDrawdown` or `risk.maxDailyLoss`).",
    )


class PromotionSpec(ApiModel):
    """Where the live strategy comes from and what its paper strategy must have shown."""

    from_: str = Field(
        alias="from",
        min_length=1,
        max_length=63,
        pattern=PAPER_NAME,
        description="Name of the paper LiveStrategy in the same namespace whose track record admits this one. "
        "It must run the same strategy (class, config, instruments).",
    )
    criteria: PromotionCriteria = Field(
        default_factory=PromotionCriteria, description="What the paper strategy's track record must show."
    )


class StatusModel(ApiModel):
    # As livestrat.api.status.StatusModel (which imports this module): a reader survives a newer writer.
    model_config = ApiModel.model_config | ConfigDict(extra="ignore")


class BacktestAgreement(StatusModel):
    """``status.trading.backtest``: a paper run's fills against the backtest of the same spec over the same data."""

    checked_at: str = Field(json_schema_extra={"format": "date-time"}, description="When the runtime compared them.")
    paper_fills: int = Field(ge=0, description="Fills of the paper run (the ledger's, under `ledgerKey`).")
    backtest_fills: int = Field(ge=0, description="Fills of the backtest.")
    matched: int = Field(ge=0, description="Fills in both (the same instrument and trade id).")
    mismatches: int = Field(
        ge=0, description="Fills only in one of them, plus matched fills differing in side, quantity or price."
    )
    message: str = Field(default="", description="The comparison in words, or why it could not be made.")


class PromotionState(StrEnum):
    ACCEPTED = "Accepted"
    REFUSED = "Refused"


class PromotionEvidence(StatusModel):
    """The paper strategy's figures the decision was made on, as the operator read them."""

    running_since: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="When the paper strategy's `Trading` condition last became True.",
    )
    duration_seconds: int = Field(default=0, ge=0, description="Seconds it had been trading when decided.")
    fills: int = Field(default=0, ge=0, description="Fills in its current run.")
    max_drawdown: str | None = Field(default=None, description="Largest drawdown seen in its current run.")
    risk_halts: int = Field(default=0, ge=0, description="Risk halts in its current run (0 or 1: a halt ends a run).")
    backtest_mismatches: int | None = Field(
        default=None, ge=0, description="Its fills against the backtest's (`status.trading.backtest.mismatches`)."
    )


class PromotionRecord(StatusModel):
    """``status.promotion``: the operator's last promotion decision, and its evidence (the audit record)."""

    state: PromotionState = Field(description="Accepted: the live strategy may run. Refused: it gets no pod.")
    from_: str = Field(alias="from", description="The paper strategy decided on.")
    message: str = Field(default="", max_length=32768, description="Why, with the figures.")
    promoted_by: str | None = Field(
        default=None,
        description="Who asked for the promotion: the `livestrat.io/promoted-by` annotation `kubectl livestrat "
        "promote` writes (the user's identity from a SelfSubjectReview).",
    )
    decided_at: str = Field(json_schema_extra={"format": "date-time"}, description="When the operator decided.")
    strategy_hash: str = Field(
        description="Digest of the strategy (class, config, instruments) promoted: a change of them needs a new "
        "promotion."
    )
    evidence: PromotionEvidence | None = Field(default=None, description="The paper strategy's figures.")
