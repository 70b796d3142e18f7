"""One claim per live venue account and instrument: which live strategy may trade it, decided from what was observed.

A live runtime's strategy takes every order and position of its instruments on its account for its own: it claims
them (``StrategyConfig.external_order_claims``), so after a restart NautilusTrader's reconciliation gives it every
order the venue reports for them, whoever placed it, and the position their fills make; a halt then cancels every
order the node holds, and the risk guard counts every position of the instrument. Two live strategies trading one
instrument on one account would each take, cancel and count the other's orders and position, whatever the
account's OMS type (on a NETTING account they would also share the venue's single position). So of the live
strategies of a namespace on one venue account (:func:`livestrat.api.accounts.claimed_account`), NETTING or
HEDGING, one holds each instrument they share, and the others get no pod (``NettingAccountInUse``: the reason's
name is kept from when only NETTING accounts were claimed, users and alerts match on it). Paper strategies (their
own simulated account) claim nothing.

**Who holds it**, the same answer whatever order the strategies arrived or were observed in: of those
wanting or holding the instrument, the first by :func:`rank`:

1. one that holds it already: its StatefulSet asks for a pod (``active``), or the operator recorded the claim in
   its status (``status.nettingClaim``, written once its pod runs as the holder and kept while it is halted: a
   halted strategy may still hold a position at the venue, which the next strategy's reconciliation would adopt).
   A running strategy stops only when asked (architecture decision 11): it keeps the claim against an older one;
   of two holders (both run), the one that holds it longest;
2. then the oldest (``metadata.creationTimestamp``), then the name (unique in a namespace: two created in
   the same second).

A strategy that waits keeps the place it would have (a younger one on another of its instruments waits too).
A claim passes on only when its holder is deleted (after its halt) or its pod starts again on another account
(or in paper mode): an edit alone releases nothing. When two strategies both run (started by an operator that
knew no claims, or while one's record was lost), neither is halted: the one that does not hold the claim
reports the conflict (the same reason, on a running pod) until someone halts one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from livestrat.api.status import NettingClaim
from strategy_operator.build.policy import SpecProblem

NETTING_ACCOUNT_IN_USE = "NettingAccountInUse"
UNRECORDED = "~"  # sorts after every RFC 3339 time


@dataclass(frozen=True)
class Claimant:
    """A live strategy on a venue account, as its claims are decided."""

    name: str
    uid: str
    created: str  # metadata.creationTimestamp as stored (RFC 3339 in UTC: it sorts as time does)
    account: str  # livestrat.api.accounts.claimed_account
    instruments: tuple[str, ...]  # those its spec trades
    active: bool = False  # its StatefulSet asks for a pod
    held: tuple[str, ...] = ()  # those its status.nettingClaim records on this account
    since: str = ""  # when that was recorded

    def holds(self, instrument: str) -> bool:
        return instrument in self.held or (self.active and instrument in self.instruments)

    def contends(self, instrument: str) -> bool:
        return instrument in self.held or instrument in self.instruments


def rank(claimant: Claimant, instrument: str) -> tuple[bool, str, str, str, str]:
    """The order in which claimants get an instrument: those holding it first (the longest held first), then the
    oldest, then by name."""
    holds = claimant.holds(instrument)
    # a holder not recorded yet (its pod has just started, or an older operator started it) after the recorded ones
    since = (claimant.since or UNRECORDED) if holds else ""
    return (not holds, since, claimant.created, claimant.name, claimant.uid)


@dataclass(frozen=True)
class Blocked:
    """An instrument of this strategy held by another."""

    instrument: str
    holder: Claimant


def blocked(me: Claimant, others: Iterable[Claimant]) -> list[Blocked]:
    """The instruments of ``me`` another strategy of its account holds, each with its holder (in instrument order)."""
    rivals = [o for o in others if o.uid != me.uid and o.account == me.account]
    found = []
    for instrument in sorted(set(me.instruments)):
        sharing = [o for o in rivals if o.contends(instrument)]
        holder = min([me, *sharing], key=lambda c: rank(c, instrument))
        if holder is not me:
            found.append(Blocked(instrument, holder))
    return found


def claim_problems(me: Claimant | None, others: Iterable[Claimant]) -> list[SpecProblem]:
    """``NettingAccountInUse`` when another strategy holds an instrument of ``me`` on its account: no pod starts
    (a running one keeps running, and reports it)."""
    if me is None:
        return []
    found = blocked(me, others)
    if not found:
        return []
    holders = sorted({b.holder.name for b in found})
    instruments = ", ".join(f"{b.instrument} (held by {b.holder.name})" for b in found)
    # Nothing in the message changes with the holder's own state (running, halted): it would rewrite this status
    # at every turn of the other strategy's lifecycle.
    if me.active:
        effect = (
            f"Both run on it: neither is halted by the operator (a running strategy stops only when asked). Halt one "
            f"of them now: kubectl scale livestrategy {me.name} --replicas=0"
        )
    else:
        effect = (
            "No pod starts for this strategy until the claim is free. A holder keeps it while it runs, and while it is "
            "halted or waiting (it may still hold a position at the venue); it passes on when the holder is deleted, "
            "or its pod starts again on another account"
        )
    message = (
        f"Account {me.account}: instrument {instruments}. A live strategy takes every order and position of its "
        "instruments on its account for its own (at reconciliation after a restart; a halt cancels them, its risk "
        "guard counts them), so two strategies trading one instrument on one account would each take the other's, "
        f"on any account type. {effect}. To run this strategy: trade on another account or subaccount (a "
        "credentials Secret of its own keys), or other instruments; or halt and delete "
        f"{', '.join(holders)} (flatten its position first: kubectl scale livestrategy NAME --replicas=0 with "
        "haltPolicy flatten)."
    )
    return [SpecProblem(NETTING_ACCOUNT_IN_USE, message)]


def record(
    me: Claimant | None, previous: NettingClaim | None, *, runs: bool, blocked: bool, now: datetime
) -> NettingClaim | None:
    """``status.nettingClaim``: recorded when the strategy's pod runs as the holder of its instruments (``runs``: the
    plan wants its pod; not ``blocked``: no other holds one of them). On the same account it only grows (a pod under
    ``updatePolicy: Manual`` may run an older list of instruments, and a halted one may hold a position in any it
    traded), its time kept; on another account it is replaced. Kept as it is while the strategy is halted or held;
    dropped when the pod of a strategy that claims nothing now (paper) runs."""
    if me is None:  # paper now: kept until its pod starts so
        return None if runs else previous
    if not runs or blocked:
        return previous
    same = previous is not None and previous.account == me.account
    instruments = sorted(set(me.instruments) | (set(previous.instruments) if same and previous else set()))
    if same and previous is not None and previous.instruments == instruments:
        return previous
    since = previous.since if same and previous is not None else _timestamp(now)
    return NettingClaim(account=me.account, instruments=instruments, since=since)


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
