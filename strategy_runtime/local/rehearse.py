"""``livestrat rehearse FILE``: a live manifest, unchanged, traded through the real adapter against a local venue.

What a desk tries before testnet: the spec's options, limits, halt policy and credentials format,
through NautilusTrader's real Binance adapter, against ``livestrat venue-emulator`` (Binance's
public protocol on 127.0.0.1, fed by a catalog), which the rehearsal starts and stops itself:

- the manifest is validated as the API server would and must be ``mode: live`` on the ``binance``
  adapter (``spot`` or ``usdtFutures``: what the emulator speaks); ``credentialsSecret`` is checked
  for its format only: the rehearsal generates a key pair for the emulator (in a scenario file
  readable by its owner only, never on a command line) and hands it to the runtime in its
  environment, as a pod gets its Secret;
- the catalog is the manifest's (``--catalog DIR``, default ``WORKDIR/catalogs/NAME``); an empty one
  gets a synthetic sample first (``data.sample``'s defaults: a live spec has no ``data.sample``), as
  ``livestrat run`` does, and the run says so. The emulator replays it on the wall clock at
  ``--speed`` (default 60: a one-minute bar a second) and fills the orders it gets from it;
- the runtime is the pod's (``StrategyRuntime``), pointed at the emulator with the endpoints
  override (``LIVESTRAT_VENUE_ENDPOINTS``, ``strategy_runtime.live.endpoints``), without HTTP and
  status push; the ledger is an SQLite file under ``WORKDIR/state/NAME`` (allowed for a rehearsal
  only: no real money, and the emulated account lives no longer than the run), or PostgreSQL with
  a DSN from ``LIVESTRAT_LEDGER_DSN`` or ``--ledger-file``, as for ``livestrat run``. Every
  rehearsal is a fresh emulated account under a ledger key of its own;
- it stops after ``--duration`` seconds (by default when the catalog's market is over: its span at
  ``--speed``, a few seconds more for the last fills to arrive), or at Ctrl-C, and halts
  as a pod asked to halt does (``haltPolicy`` applies); then ``livestrat run``'s summary, and what
  the venue says: its trades against the ledger's fills (by trade id) and the orders it still holds.

Exit code: the runtime's (0 after a clean halt, 5 when the halt left orders open at the venue), 1
when the venue's trades and the ledger's fills differ, 2 for a manifest it cannot rehearse.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import string
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from livestrat.api.runtime_config import (
    ENV_API_KEY,
    ENV_API_SECRET,
    RuntimeConfig,
)
from livestrat.api.spec import AccountType, Adapter, Mode, SampleData
from livestrat.api.validation import InvalidManifest
from livestrat.venue_emulator.auth import ed25519_private_key_pkcs8
from strategy_runtime.ledger import DsnParts, FillRecord, LedgerError
from strategy_runtime.live.endpoints import ENV_VENUE_ENDPOINTS
from strategy_runtime.local import figures
from strategy_runtime.local.emulated_venue import EmulatedVenue, EmulatorError, write_scenario
from strategy_runtime.local.run import (
    LEDGER_ON_THE_COMMAND_LINE,
    configure_logging,
    given_dsn,
    manifest_config,
    own_key,
    print_summary,
)
from strategy_runtime.paper.catalog import CatalogError, StrategyCatalog, prepare_catalog
from strategy_runtime.paper.sample_data import SampleDataError
from strategy_runtime.runtime import EXIT_FAILED, EXIT_INVALID, EXIT_OK, RunOutcome, RuntimeOptions, StrategyRuntime

logger = logging.getLogger("livestrat.rehearse")

DEFAULT_SPEED = 60.0  # a one-minute bar a second
DEFAULT_QUOTE_BALANCE = Decimal(100_000)
PROGRESS_EVERY_SECONDS = 10.0
# What the emulator speaks (livestrat.venue_emulator): Binance spot and USD-M futures.
REHEARSABLE = {AccountType.SPOT, AccountType.USDT_FUTURES}
_KEY_ALPHABET = string.ascii_letters + string.digits


class CannotRehearse(ValueError):
    """The manifest cannot be rehearsed: the message names the field and what to do."""


@dataclass(frozen=True)
class EmulatorKeys:
    """The key pair the emulator accepts for this rehearsal, in Binance's formats: an API key of 64 letters and
    digits; as the secret an Ed25519 private key (PKCS#8, base64) or an HMAC secret. Spot takes Ed25519, because
    NautilusTrader 1.231's spot execution client logs on to the WebSocket API, which Binance (and the emulator)
    open to Ed25519 keys only; USD-M takes HMAC, with which the futures client keeps its listen key over REST."""

    api_key: str
    api_secret: str
    key_type: str = "ed25519"

    @classmethod
    def generate(cls, key_type: str = "ed25519") -> EmulatorKeys:
        def letters_and_digits() -> str:
            return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(64))

        if key_type == "hmac":
            return cls(letters_and_digits(), letters_and_digits(), "hmac")
        return cls(letters_and_digits(), ed25519_private_key_pkcs8(secrets.token_bytes(32)))

    @classmethod
    def for_account(cls, account_type: AccountType) -> EmulatorKeys:
        return cls.generate("hmac" if account_type == AccountType.USDT_FUTURES else "ed25519")

    def __repr__(self) -> str:
        return "EmulatorKeys(<redacted>)"


def product_of(account_type: AccountType) -> str:
    """The emulator's account a spec trades: ``spot`` or ``usdm``."""
    return "usdm" if account_type == AccountType.USDT_FUTURES else "spot"


def rehearsable(file: str | Path, config: RuntimeConfig) -> None:
    """CannotRehearse unless the spec is a live Binance spot or USD-M futures strategy."""
    spec = config.spec
    if spec.mode != Mode.LIVE:
        raise CannotRehearse(
            f"{file}: spec.mode is {spec.mode}, and livestrat rehearse takes only spec.mode: live (it trades the live "
            f"spec through the venue's real adapter against an emulated venue). Run a paper spec with: livestrat run "
            f"{file}"
        )
    if spec.venue.adapter != Adapter.BINANCE:
        raise CannotRehearse(
            f"{file}: spec.venue.adapter is {spec.venue.adapter}: the venue emulator speaks Binance's protocol only, "
            "so livestrat rehearse takes adapter binance. Try this one on its own test environment "
            "(spec.venue.testnet: true) instead"
        )
    account_type = AccountType(spec.venue.account_type or AccountType.SPOT)
    if account_type not in REHEARSABLE:
        raise CannotRehearse(
            f"{file}: spec.venue.accountType is {account_type}: the venue emulator offers "
            f"{' and '.join(sorted(REHEARSABLE))} (Binance spot and USD-M futures)"
        )


def rehearsal_config(args: argparse.Namespace, environ: dict[str, str], dsn: str | None) -> RuntimeConfig:
    """The manifest's spec as it is, local paths, a ledger key of the rehearsal's own (InvalidManifest if invalid)."""
    config = manifest_config(args, environ, dsn)
    return config.model_copy(update={"strategy": own_key(config, "rehearsal")})


def parse_balance(text: str) -> tuple[str, Decimal]:
    """``"100000 USDT"`` -> ("USDT", 100000); ValueError saying what to write."""
    amount, _, asset = text.strip().partition(" ")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        value = Decimal(-1)
    if not asset.strip() or not asset.strip().isalnum() or value < 0:
        raise ValueError(f"--balance {text!r}: write an amount and an asset, for example --balance '100000 USDT'")
    return asset.strip().upper(), value


def starting_balances(given: Sequence[str], quote_assets: Iterable[str]) -> dict[str, Decimal]:
    """The emulated account's balances: ``--balance`` as given, else 100,000 of each instrument's quote asset."""
    if given:
        return dict(parse_balance(text) for text in given)
    return dict.fromkeys(sorted(set(quote_assets)), DEFAULT_QUOTE_BALANCE)


def scenario_for(keys: EmulatorKeys, balances: Mapping[str, Decimal], product: str = "spot") -> dict[str, Any]:
    """The emulator's scenario (``livestrat.venue_emulator.scenario``): the keys it accepts and the balances (for
    USD-M: the wallet, in USDT)."""
    scenario: dict[str, Any] = {
        "keys": [{"api_key": keys.api_key, "secret": keys.api_secret, "key_type": keys.key_type}]
    }
    if product == "usdm":
        scenario["usdm_wallet"] = str(balances.get("USDT", DEFAULT_QUOTE_BALANCE))
    else:
        scenario["balances"] = {asset: str(amount) for asset, amount in balances.items()}
    return scenario


def venue_symbol(instrument_id: str) -> str:
    """The venue's symbol of a Binance instrument id: BTCUSDT.BINANCE and BTCUSDT-PERP.BINANCE are BTCUSDT."""
    return instrument_id.rsplit(".", 1)[0].removesuffix("-PERP")


@dataclass(frozen=True)
class Rehearsal:
    """What a rehearsal ends with: the runtime's outcome and what the venue says (None if it did not answer)."""

    runtime: StrategyRuntime
    outcome: RunOutcome
    comparison: VenueComparison | None
    account: dict[str, Any] | None
    problem: str | None


@dataclass(frozen=True)
class VenueComparison:
    """The venue's trades against the ledger's fills, by (symbol, trade id)."""

    at_venue: int
    in_ledger: int
    only_at_venue: tuple[str, ...]
    only_in_ledger: tuple[str, ...]
    open_orders: int

    @property
    def agrees(self) -> bool:
        return not self.only_at_venue and not self.only_in_ledger

    @classmethod
    def of(cls, trades: Sequence[Mapping[str, Any]], fills: Sequence[FillRecord], open_orders: int) -> VenueComparison:
        venue = {f"{t['symbol']}#{t['id']}" for t in trades}
        ledger = {f"{venue_symbol(f.instrument_id)}#{f.trade_id}" for f in fills}
        return cls(
            at_venue=len(trades),
            in_ledger=len(fills),
            only_at_venue=tuple(sorted(venue - ledger)),
            only_in_ledger=tuple(sorted(ledger - venue)),
            open_orders=open_orders,
        )


FEED_END_MARGIN_SECONDS = 5.0


def market_seconds(catalog: StrategyCatalog, instrument_ids: Sequence[str], speed: float) -> float | None:
    """How long the emulator's feed of the catalog's bars lasts at ``speed`` (wall seconds), None without bars."""
    stamps = [bar.ts_init for bar in catalog.catalog.bars(instrument_ids=list(instrument_ids))]
    if not stamps or speed <= 0:
        return None
    return (max(stamps) - min(stamps)) / 1e9 / speed + FEED_END_MARGIN_SECONDS


def print_venue(comparison: VenueComparison | None, balances: Mapping[str, Any] | None, problem: str | None) -> None:
    if comparison is None:
        print(f"  the venue:      not asked ({problem or 'the emulator did not answer'})")
        return
    verdict = (
        "the same trades"
        if comparison.agrees
        else f"DIFFER: {len(comparison.only_at_venue)} only at the venue "
        f"({', '.join(comparison.only_at_venue[:5]) or '-'}), {len(comparison.only_in_ledger)} only in the ledger "
        f"({', '.join(comparison.only_in_ledger[:5]) or '-'}): report it"
    )
    print(f"  venue fills:    {comparison.at_venue} at the venue, {comparison.in_ledger} in the ledger ({verdict})")
    print(f"  venue orders:   {comparison.open_orders} open at the venue after the halt")
    if balances:
        shown = ", ".join(f"{asset} {value}" for asset, value in sorted(balances.items()))
        print(f"  venue account:  {shown}")


async def _progress(runtime: StrategyRuntime, started: float) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY_SECONDS)
        if runtime.reporter is None:
            continue
        trading = runtime.status_snapshot().trading
        pnl = runtime.guard.book_pnl().total if runtime.guard is not None else {}  # exact, as the summary
        try:
            print(
                f"  {time.monotonic() - started:6.0f}s  fills {figures.count(trading.fills)}  "
                f"open orders {figures.count(trading.open_orders)}  PnL {figures.amounts(pnl, empty='-')}",
                flush=True,
            )
        except BrokenPipeError:  # nobody reads it any more (| head): halt, as livestrat run does
            runtime.request_stop("its output was closed")
            return


def _account(balances: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The emulator's balances for the summary line: ``free`` (and ``locked``, when something is)."""
    shown = {}
    for asset, balance in balances.items():
        locked = Decimal(balance.get("locked") or 0)
        shown[asset] = f"{balance.get('free')}" + (f" (+{balance['locked']} locked)" if locked else "")
    return shown


def _positions(document: Mapping[str, Any]) -> dict[str, str]:
    """The emulator's USD-M account for the summary line: the wallet and each position."""
    shown = {"wallet USDT": str(document.get("wallet"))}
    for symbol, position in (document.get("positions") or {}).items():
        shown[f"position {symbol}"] = f"{position.get('amount')} @ {position.get('entry_price')}"
    return shown


async def rehearse(
    config: RuntimeConfig,
    *,
    environ: dict[str, str],
    catalog: Path,
    directory: Path,
    keys: EmulatorKeys,
    balances: Mapping[str, Decimal],
    speed: float,
    duration: float | None,
    quiet: bool,
) -> Rehearsal:
    """Start the emulator, run the runtime against it until asked to stop, halt, ask the venue, stop the emulator."""
    product = product_of(AccountType(config.spec.venue.account_type or AccountType.SPOT))
    scenario = write_scenario(directory / "scenario.json", scenario_for(keys, balances, product))
    venue = await EmulatedVenue.start(
        directory, catalog=catalog, instruments=list(config.spec.instruments), scenario=scenario, speed=speed
    )
    try:
        print(f"venue emulator at {venue.urls.http} (pid {venue.pid}, log {venue.stderr_path})", flush=True)
        runtime_environ = environ | {
            ENV_API_KEY: keys.api_key,
            ENV_API_SECRET: keys.api_secret,
            ENV_VENUE_ENDPOINTS: venue.endpoints,
        }
        options = RuntimeOptions(
            serve_http=False,
            push_status=False,
            fence_wait_seconds=0.0,
            environ=runtime_environ,
            keep_fills=True,
            keep_watchdog_armed=True,
            signals_halt=True,  # Ctrl-C: the person at the terminal asks for a halt
            rehearsal=True,
        )
        runtime = StrategyRuntime(config, options)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        helpers = [] if quiet else [loop.create_task(_progress(runtime, started))]
        if duration is not None:

            async def stop_after() -> None:
                await asyncio.sleep(duration)
                runtime.request_stop(f"the rehearsal's {duration:g}s are over")

            helpers.append(loop.create_task(stop_after()))
        try:
            outcome = await runtime.run()
        finally:
            for task in helpers:
                task.cancel()
        try:
            trades = await venue.admin.trades(product=product)
            open_orders = await venue.admin.open_orders(product=product)
            if product == "usdm":
                account = _positions(await venue.admin.positions())
            else:
                account = _account(await venue.admin.balances())
        except (EmulatorError, OSError, ValueError, KeyError) as exc:
            return Rehearsal(runtime, outcome, None, None, str(exc))
        comparison = VenueComparison.of(trades, outcome.ledger_fills or [], len(open_orders))
        return Rehearsal(runtime, outcome, comparison, account, None)
    finally:
        await venue.stop_async()


def rehearse_command(args: argparse.Namespace) -> int:
    configure_logging()
    if args.ledger is not None:
        print(f"livestrat rehearse: {LEDGER_ON_THE_COMMAND_LINE}", file=sys.stderr)
        return EXIT_INVALID
    environ = dict(os.environ)
    environ.pop(ENV_VENUE_ENDPOINTS, None)  # the rehearsal's own emulator, whatever the shell says
    try:
        given = given_dsn(args, environ)
        where = DsnParts.parse(*given) if given else None
        config = rehearsal_config(args, environ, given[0] if given else None)
        rehearsable(args.file, config)
    except (LedgerError, InvalidManifest, CannotRehearse) as exc:  # never the DSN in the message
        print(f"livestrat rehearse: {exc}", file=sys.stderr)
        return EXIT_INVALID
    ledger = f"PostgreSQL {where} (from {given[1]})" if given else f"SQLite {config.ledger.sqlite_path}"
    # A live spec has no data.sample: an empty catalog gets the sample's defaults, as a paper spec's would.
    with_sample = config.model_copy(
        update={
            "spec": config.spec.model_copy(
                update={"data": config.spec.data.model_copy(update={"sample": SampleData()})}
            )
        }
    )
    try:
        catalog = prepare_catalog(with_sample)
        balances = starting_balances(args.balance, (i.quote_currency.code for i in catalog.instruments))
    except (CatalogError, SampleDataError, ValueError) as exc:
        print(f"livestrat rehearse: {exc}", file=sys.stderr)
        return EXIT_INVALID
    notice = catalog.sample_notice(with_sample.spec.data.sample)
    if notice is not None:
        print(notice, flush=True)
    directory = Path(config.state_dir) / "rehearsals" / config.strategy.namespace
    print(
        f"rehearsing {config.strategy.name} (live, {config.spec.venue.adapter} "
        f"{config.spec.venue.account_type or 'spot'}) against the venue emulator on {catalog.path} at speed "
        f"{args.speed:g}, ledger {ledger} (Ctrl-C halts it)",
        flush=True,
    )
    started = time.monotonic()
    try:
        done = asyncio.run(
            rehearse(
                config,
                environ=environ,
                catalog=Path(catalog.path),
                directory=directory,
                keys=EmulatorKeys.for_account(AccountType(config.spec.venue.account_type or AccountType.SPOT)),
                balances=balances,
                speed=args.speed,
                duration=args.duration
                if args.duration is not None
                else market_seconds(catalog, config.spec.instruments, args.speed),
                quiet=args.quiet,
            )
        )
    except EmulatorError as exc:
        print(f"livestrat rehearse: {exc}", file=sys.stderr)
        return EXIT_FAILED
    done.runtime.disarm_watchdog()
    print_summary(config, done.outcome, time.monotonic() - started, command="livestrat rehearse")
    print_venue(done.comparison, done.account, done.problem)
    if done.outcome.exit_code == EXIT_OK and (done.comparison is None or not done.comparison.agrees):
        return EXIT_FAILED
    return done.outcome.exit_code
