"""A scenario: the venue's state at start (keys, balances, open orders) and the faults it plays, as one file.

YAML or JSON, validated by :class:`Scenario` (unknown fields are errors)::

    keys:
      - api_key: <64 letters and digits>
        secret: <the HMAC secret, or the Ed25519 private key as PKCS#8 base64/PEM>
        key_type: ed25519            # or hmac (the default)
    balances: {USDT: "100000", BTC: "1"}
    open_orders:                     # spot, resting at start, before any client connects
      - {symbol: BTCUSDT, side: SELL, quantity: "0.01", price: "45000", client_order_id: held-1}
    usdm_wallet: "50000"             # USD-M futures: the USDT wallet, positions, leverage, resting orders
    usdm_positions: [{symbol: BTCUSDT, amount: "-0.5", entry_price: "42000"}]
    usdm_leverage: {BTCUSDT: 10}
    usdm_open_orders: []
    faults:                          # the admin API's fault models; after_s: when, from the start
      - {kind: rate_limit, path: /api/v3/order, count: 1, retry_after_s: 2, after_s: 5}

Secrets are ``SecretStr``: a scenario printed or logged never shows one.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from livestrat.venue_emulator.accounts import Position, UsdmAccount
from livestrat.venue_emulator.auth import ApiKey
from livestrat.venue_emulator.exchange import Exchange
from livestrat.venue_emulator.faults import Fault


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScenarioKey(_Model):
    api_key: str = Field(pattern=r"^[A-Za-z0-9]{64}$", description="64 letters and digits, as Binance's keys")
    secret: SecretStr
    key_type: Literal["hmac", "ed25519"] = "hmac"

    def api_key_pair(self) -> ApiKey:
        return ApiKey(self.api_key, self.secret.get_secret_value(), self.key_type)


class ScenarioOrder(_Model):
    symbol: str
    side: Literal["BUY", "SELL"]
    type: Literal["LIMIT", "LIMIT_MAKER"] = "LIMIT"
    quantity: Decimal = Field(gt=0)
    price: Decimal = Field(gt=0)
    time_in_force: Literal["GTC"] = "GTC"
    client_order_id: str | None = None


class ScenarioPosition(_Model):
    """A USD-M position held at start (one-way mode): signed amount, long > 0."""

    symbol: str
    amount: Decimal
    entry_price: Decimal = Field(gt=0)


class Scenario(_Model):
    keys: list[ScenarioKey] = Field(min_length=1)
    balances: dict[str, Decimal] = Field(default_factory=dict, description="spot balances")
    open_orders: list[ScenarioOrder] = Field(default_factory=list, description="spot orders resting at start")
    usdm_wallet: Decimal = Field(Decimal(0), ge=0, description="USD-M futures: the USDT wallet balance")
    usdm_positions: list[ScenarioPosition] = Field(default_factory=list)
    usdm_leverage: dict[str, int] = Field(default_factory=dict, description="USD-M leverage per symbol (default 20)")
    usdm_open_orders: list[ScenarioOrder] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        text = Path(path).read_text()
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        return cls.model_validate(data or {})

    def api_keys(self) -> list[ApiKey]:
        return [k.api_key_pair() for k in self.keys]

    def usdm_account(self) -> UsdmAccount:
        account = UsdmAccount(wallet=self.usdm_wallet)
        for symbol, leverage in self.usdm_leverage.items():
            account.set_leverage(symbol, leverage)
        for p in self.usdm_positions:
            account.positions[p.symbol] = Position(p.symbol, p.amount, p.entry_price)
        return account

    def place_open_orders(self, exchange: Exchange) -> None:
        """Put the scenario's resting orders on the book, as if placed before anyone connected."""
        for o in self.usdm_open_orders if exchange.product == "usdm" else self.open_orders:
            tif = o.time_in_force if o.type == "LIMIT" else None
            exchange.new_order(o.symbol, o.side, o.type, o.quantity, o.price, tif, o.client_order_id)
