"""The OKX venue's scenario: its keys (each with its passphrase), spot balances and resting orders.

YAML or JSON, validated by :class:`OkxScenario` (unknown fields are errors)::

    keys:
      - {api_key: <the key>, secret: <the HMAC secret>, passphrase: <the key's passphrase>}
    balances: {USDT: "100000", BTC: "1"}
    open_orders:                     # resting at start, before any client connects
      - {symbol: BTC-USDT, side: SELL, quantity: "0.01", price: "45000", client_order_id: held1}

Secrets and passphrases are ``SecretStr``: a scenario printed or logged never shows one.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from livestrat.venue_emulator.exchange import Exchange
from livestrat.venue_emulator.okx.auth import OkxKey
from livestrat.venue_emulator.scenario import ScenarioOrder


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OkxScenarioKey(_Model):
    api_key: str = Field(min_length=1)
    secret: SecretStr
    passphrase: SecretStr

    def okx_key(self) -> OkxKey:
        return OkxKey(self.api_key, self.secret.get_secret_value(), self.passphrase.get_secret_value())


class OkxScenario(_Model):
    keys: list[OkxScenarioKey] = Field(min_length=1)
    balances: dict[str, Decimal] = Field(default_factory=dict, description="spot balances")
    open_orders: list[ScenarioOrder] = Field(default_factory=list, description="spot orders resting at start")

    @classmethod
    def load(cls, path: str | Path) -> OkxScenario:
        text = Path(path).read_text()
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        return cls.model_validate(data or {})

    def okx_keys(self) -> list[OkxKey]:
        return [k.okx_key() for k in self.keys]

    def place_open_orders(self, exchange: Exchange) -> None:
        for o in self.open_orders:
            exchange.new_order(o.symbol, o.side, o.type, o.quantity, o.price, "GTC" if o.type == "LIMIT" else None,
                               o.client_order_id)  # fmt: skip
