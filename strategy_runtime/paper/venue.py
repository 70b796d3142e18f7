"""The simulated venue of a paper strategy, in one place for the paper node and the backtest oracle.

Paper fills equal backtest fills only if both simulate the same venue: same account and order
management type, balances, leverage, execution from bars and trades, fill model. ``PaperVenue``
is derived once from the spec (``paper_venue(spec)``) and renders both the sandbox execution
client's config and the ``BacktestVenueConfig``, so the two cannot drift apart.

``spec.venue.options`` of a sandbox venue set the simulation's knobs (``oms_type``,
``use_reduce_only``, ``prob_slippage`` with ``random_seed``, ``bar_adaptive_high_low_ordering``, …).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from nautilus_trader.backtest.config import ImportableFillModelConfig
from nautilus_trader.config import BacktestVenueConfig

from livestrat.api.spec import AccountType, LiveStrategySpec, ReplayDataType
from strategy_runtime.live.venue_options import VenueOptionError, convert_options
from strategy_runtime.paper.sandbox import SandboxExecClientConfig

SANDBOX_CLIENT_NAME = "SANDBOX"
DEFAULT_ACCOUNT_TYPE = AccountType.MARGIN

# Fields of the sandbox config the spec sets itself, and where.
_RESERVED = {
    "venue": "the venue is spec.venue.name",
    "starting_balances": "use spec.venue.startingBalances",
    "account_type": "use spec.venue.accountType (cash or margin)",
    "instrument_provider": "instruments come from the catalog (spec.instruments)",
    "routing": "the sandbox is routed by venue",
}


@dataclass(frozen=True)
class PaperVenue:
    """Everything that decides how the simulated venue fills orders."""

    venue: str
    account_type: str  # CASH or MARGIN
    starting_balances: tuple[str, ...]
    oms_type: str = "NETTING"
    base_currency: str | None = None
    default_leverage: Decimal = Decimal(1)
    leverages: tuple[tuple[str, float], ...] = ()
    book_type: str = "L1_MBP"
    frozen_account: bool = False
    bar_execution: bool = True
    trade_execution: bool = False
    bar_adaptive_high_low_ordering: bool = False
    reject_stop_orders: bool = True
    support_gtd_orders: bool = True
    support_contingent_orders: bool = True
    use_position_ids: bool = True
    use_random_ids: bool = False
    use_reduce_only: bool = True
    prob_fill_on_limit: float = 1.0
    prob_slippage: float = 0.0
    random_seed: int | None = None

    def _matching(self) -> dict[str, Any]:
        """The settings the sandbox and the backtest venue name alike."""
        shared = {name: getattr(self, name) for name in _SHARED_SETTINGS}
        return shared | {"starting_balances": list(self.starting_balances), "leverages": dict(self.leverages) or None}

    def _fill_model(self) -> dict[str, Any]:
        return {
            "prob_fill_on_limit": self.prob_fill_on_limit,
            "prob_slippage": self.prob_slippage,
            "random_seed": self.random_seed,
        }

    def sandbox_config(self) -> SandboxExecClientConfig:
        return SandboxExecClientConfig(
            venue=self.venue, default_leverage=self.default_leverage, **self._matching(), **self._fill_model()
        )

    def backtest_config(self) -> BacktestVenueConfig:
        fill_model = self._fill_model()
        return BacktestVenueConfig(
            name=self.venue,
            default_leverage=float(self.default_leverage),
            **self._matching(),
            fill_model=(
                None  # the engine's default FillModel(): the one the sandbox builds from the defaults
                if fill_model == _DEFAULT_FILL_MODEL
                else ImportableFillModelConfig(
                    fill_model_path="nautilus_trader.backtest.models:FillModel",
                    config_path="nautilus_trader.backtest.config:FillModelConfig",
                    config=fill_model,
                )
            ),
            fee_model=None,  # MakerTakerFeeModel(), as the sandbox
            # The sandbox matches a command the moment it arrives (LatencyModel(0), no queue);
            # a backtest latency model would move fills to the next data point.
            latency_model=None,
        )


_SHARED_SETTINGS = (
    "account_type",
    "oms_type",
    "base_currency",
    "book_type",
    "frozen_account",
    "bar_execution",
    "trade_execution",
    "bar_adaptive_high_low_ordering",
    "reject_stop_orders",
    "support_gtd_orders",
    "support_contingent_orders",
    "use_position_ids",
    "use_random_ids",
    "use_reduce_only",
)
_DEFAULT_FILL_MODEL = {"prob_fill_on_limit": 1.0, "prob_slippage": 0.0, "random_seed": None}


class PaperVenueError(ValueError):
    """The spec does not describe a venue the sandbox can simulate."""


def paper_venue(spec: LiveStrategySpec, *, live_feed: tuple[str, str] | None = None) -> PaperVenue:
    """The simulated venue of a paper spec, options applied.

    ``live_feed``: (venue, CASH or MARGIN) of a paper strategy on a live feed (``paper.live_feed``), whose
    ``venue.options`` belong to the venue's data client: the sandbox then runs with its defaults.
    """
    venue = spec.venue
    name, account_type = live_feed or (venue.name, str(venue.account_type or DEFAULT_ACCOUNT_TYPE).upper())
    if name is None:
        raise PaperVenueError("spec.venue.name is required for the sandbox adapter (the venue it simulates)")
    if not venue.starting_balances:
        raise PaperVenueError("spec.venue.startingBalances is required in paper mode, for example ['100000 USDT']")
    replay = spec.data.replay
    data_types = replay.data_types if replay is not None else [ReplayDataType.BARS]
    settings: dict[str, Any] = {
        "venue": name,
        "account_type": account_type,
        "starting_balances": tuple(venue.starting_balances),
        # The exchange moves on trades only if trades are replayed (a backtest of the same data does the same).
        "trade_execution": ReplayDataType.TRADES in data_types,
    }
    if live_feed is not None:
        return PaperVenue(**settings)
    (options,) = convert_options(venue.options, [SandboxExecClientConfig], reserved=_RESERVED, adapter="sandbox")
    known = {f.name for f in fields(PaperVenue)}
    for key, value in options.items():
        if key not in known:  # a stock field with no backtest counterpart would break parity
            raise VenueOptionError(f"spec.venue.options.{key} is not supported for the sandbox")
        settings[key] = tuple(sorted(value.items())) if key == "leverages" and value else value
    return PaperVenue(**settings)
