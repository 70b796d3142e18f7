"""Pushing the runtime's trading and risk state into its own LiveStrategy's ``.status``.

The runtime writes only what it owns, ``status.trading`` and ``status.risk``, with a JSON
merge patch on the ``status`` subresource (the operator owns every other status field and
they are never in the patch). Every ``interval`` seconds (``report_interval_seconds``,
1 s by default) the pusher takes a snapshot and compares it with the last state the API
server accepted, heartbeat left out:

- something changed: one patch with the whole ``trading`` and ``risk`` objects (fields that
  became empty are sent as ``null``, which a merge patch deletes), and a fresh heartbeat;
- nothing changed: nothing is sent, until the last accepted push is ``heartbeat_interval``
  old (10 s by default); then a patch holding only ``status.trading.heartbeat``. A quiet
  strategy therefore costs one small patch per heartbeat interval, and the operator's
  staleness check (``Stale`` when the heartbeat is older than a few intervals) holds.

So a burst of fills costs at most one patch per interval, and a strategy at rest none but its
heartbeat.

"Accepted" means answered. A push the client gives up on (``REQUEST_TIMEOUT``, 5 s, or a cancel) is not taken
back: the API server has the request and may apply it later, even after a newer push it answered. So a whole push
leaves the state "not known accepted" until its answer comes (a failed one is sent whole again, even when the state
went back to the one accepted before), and the pusher keeps the server's own ``trading``/``risk`` (heartbeat left out)
from the answer to the last whole push. Every later answer (a heartbeat's too) is compared with it; when they
differ, what the server holds is not ours any more (a push that timed out landed late, or the status was written by
hand): a WARNING names the fields that differ (not their values), and the whole state is pushed again at once,
without waiting for a change (``stats.restored`` counts it). Server's representation against server's, never
against the snapshot: a CRD older than the runtime prunes fields the runtime sends, and those would differ at every
heartbeat. The operator never writes ``status.trading`` or ``status.risk`` (it writes only the
``OPERATOR_FIELDS`` of ``livestrat.api.status``), so there is nothing of its own to overwrite. After the final push
nothing periodic follows: the halt's last look (``final_push(only_if_changed=True)``) is one heartbeat, compared the
same way. What this cannot mend: a push given up on that lands after that look, when the runtime has exited.

The API server answers each patch with the whole object: ``on_answer`` gets it, and the runtime reads from it what
the operator hands it while it runs (``status.budget``, its share of a RiskBudget), with no read of its own. When
the API server cannot be reached (or refuses), the pusher keeps the latest state and retries with exponential
backoff (0.5 s doubling to 30 s): it runs in a task of its own and never blocks the node. ``final_push`` sends the
state one last time at shutdown, regardless of coalescing and backoff, retrying until its deadline; the halt first
stops the periodic pushes with ``stop(until=...)``, which lets a push on its way land first (see ``stop``), so that
the final state is the last the API server applies; once the node is stopped and the ledger closed, the halt sends
it again if it changed (a fill that reached the node as it stopped).

Credentials: in a pod, the pod's service account (in-cluster configuration); elsewhere the
kubeconfig named by ``$KUBECONFIG`` (or ``~/.kube/config``). The error texts it logs carry the
HTTP status and the server's message, never a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from livestrat.api.contract import MERGE_PATCH
from livestrat.api.resource import GROUP, PLURAL, VERSION
from livestrat.api.runtime_config import StrategyIdentity
from livestrat.api.status import RiskState, TradingState, another_object
from livestrat.backoff import Backoff, jittered
from livestrat.kube_config import client_configuration
from strategy_runtime.stop_cause import LiveStrategyGone
from strategy_runtime.timestamps import utc_text

logger = logging.getLogger("livestrat.status")

REQUEST_TIMEOUT = 5.0
RETRY_INITIAL = 0.5
RETRY_MAX = 30.0


@dataclass(frozen=True)
class StatusSnapshot:
    """What the runtime reports: its trading and risk state (the heartbeat is stamped when sent)."""

    trading: TradingState
    risk: RiskState

    def body(self) -> dict[str, Any]:
        """The two status objects as the API stores them; ``None`` fields are kept (as JSON null)."""
        return {
            "trading": self.trading.model_dump(mode="json", by_alias=True),
            "risk": self.risk.model_dump(mode="json", by_alias=True),
        }


class StatusApi(Protocol):
    async def patch_status(self, patch: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Merge ``patch`` into the status; the object as the API server has it after (None: not known)."""
        ...

    async def read_own(self) -> Mapping[str, Any]:
        """The runtime's own LiveStrategy as the API server has it now (read at SIGTERM: its halt record)."""
        ...

    async def read_namespace(self) -> Mapping[str, Any]:
        """The runtime's own Namespace as the API server has it now (read at SIGTERM: is it being deleted?)."""
        ...

    async def close(self) -> None: ...


class StatusPushError(Exception):
    """A push the API server did not accept (its text is safe to log)."""


class KubernetesStatusApi:
    """The LiveStrategy's status subresource through kubernetes_asyncio."""

    def __init__(self, strategy: StrategyIdentity, environ: Mapping[str, str] = os.environ) -> None:
        self._strategy = strategy
        self._environ = environ
        self._client: Any = None
        self._api: Any = None

    async def _connect(self) -> None:
        from kubernetes_asyncio import client

        self._client = client.ApiClient(await client_configuration(self._environ))
        self._api = client.CustomObjectsApi(self._client)

    async def patch_status(self, patch: Mapping[str, Any]) -> Mapping[str, Any] | None:
        try:
            if self._api is None:
                await self._connect()
            return await self._api.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                self._strategy.namespace,
                PLURAL,
                self._strategy.name,
                patch,
                _content_type=MERGE_PATCH,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except Exception as exc:
            raise _push_error(exc) from None

    async def read_own(self) -> Mapping[str, Any]:
        """The whole object, from the response of a merge patch of the status that changes nothing (``{}``: the API
        server writes nothing, no new resourceVersion, no watch event). Not a GET: the pod's identity may only patch
        the status of its own LiveStrategy, and a read is never narrowed by an admission policy (the shared
        identity's Role names no strategy; the policy that narrows it sees writes only)."""
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            if self._api is None:
                await self._connect()
            body = await self._api.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                self._strategy.namespace,
                PLURAL,
                self._strategy.name,
                {},
                _content_type=MERGE_PATCH,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 404 and _names_missing(exc.body, self._strategy.name):
                raise LiveStrategyGone(str(_push_error(exc))) from None  # deleted: an answer, not a failed read
            raise _push_error(exc) from None
        except Exception as exc:
            raise _push_error(exc) from None
        return dict(body)

    async def read_namespace(self) -> Mapping[str, Any]:
        """GET of the pod's own Namespace, which its Role allows (that object only: ``resourceNames``)."""
        from kubernetes_asyncio import client

        try:
            if self._api is None:
                await self._connect()
            found = await client.CoreV1Api(self._client).read_namespace(
                self._strategy.namespace, _request_timeout=REQUEST_TIMEOUT
            )
            return {"metadata": {"name": found.metadata.name}, "status": {"phase": found.status.phase}}
        except Exception as exc:
            raise _push_error(exc) from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = self._api = None


def _push_error(exc: Exception) -> StatusPushError:
    """A request that failed, said safely: the API server's answer (status, reason, message), or the error's type and
    text (a connection refused, a timeout); never a token."""
    from kubernetes_asyncio.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        return StatusPushError(f"the API server answered {exc.status} {exc.reason}: {_message(exc.body)}")
    return StatusPushError(f"{type(exc).__name__}: {exc}")


def _names_missing(body: Any, name: str) -> bool:
    """Whether a 404's Status says that the LiveStrategy ``name`` does not exist (``reason: NotFound``, ``details``
    naming it), not that the path, the namespace or the resource type is unknown (a missing CRD, a wrong server)."""
    try:
        status = json.loads(body)
        details = status.get("details") or {}
        return status.get("reason") == "NotFound" and details.get("name") == name and details.get("kind") == PLURAL
    except Exception:
        return False


def runtime_part(answer: Mapping[str, Any]) -> dict[str, Any]:
    """``status.trading`` (heartbeat left out) and ``status.risk`` as the API server has them in ``answer``: after its
    merge, pruning and defaulting (a CRD older than the runtime drops fields the runtime sends)."""
    status = answer.get("status")
    status = status if isinstance(status, Mapping) else {}
    trading = status.get("trading")
    if isinstance(trading, Mapping):
        trading = {k: v for k, v in trading.items() if k != "heartbeat"}
    return copy.deepcopy({"trading": trading, "risk": status.get("risk")})


def differing(ours: Mapping[str, Any], held: Mapping[str, Any]) -> list[str]:
    """The fields (``trading.fills``, ``risk.state``) whose values differ between two runtime parts."""
    missing = object()
    paths: list[str] = []
    for part in ("trading", "risk"):
        a, b = ours.get(part), held.get(part)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            paths += [f"{part}.{k}" for k in sorted(set(a) | set(b)) if a.get(k, missing) != b.get(k, missing)]
        elif a != b:
            paths.append(part)
    return paths


def _message(body: Any) -> str:
    try:
        return str(json.loads(body).get("message", ""))[:300]
    except Exception:
        return ""


@dataclass
class PushStats:
    pushes: int = 0
    heartbeats: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_push_at: datetime | None = None
    restored: int = 0  # times the API server held a trading/risk state other than ours, and it was pushed again


class StatusPusher:
    """Coalesced, retried status pushes; see the module docstring."""

    def __init__(
        self,
        *,
        api: StatusApi,
        snapshot: Callable[[], StatusSnapshot],
        interval: float,
        heartbeat_interval: float,
        clock: Callable[[], float] = time.monotonic,
        on_answer: Callable[[Mapping[str, Any]], None] | None = None,
        strategy_uid: str | None = None,
        on_another: Callable[[str], None] | None = None,
    ) -> None:
        self._api = api
        self._on_another = on_another  # told once, with the uid, when the object of this name is another one
        self._strategy_uid = strategy_uid  # stamped on every push (status.trading.strategyUid)
        self._another: str | None = None  # the uid of the object of this name, when it is not ours: no more pushes
        self._on_answer = on_answer
        self._snapshot = snapshot
        self._interval = interval
        self._heartbeat_interval = heartbeat_interval
        self._clock = clock
        self._last_sent: str | None = None  # JSON of the last body the server accepted (None: not known)
        self._accepted: Mapping[str, Any] | None = None  # the server's runtime part in its answer to that push
        self._last_sent_at: float | None = None
        self._retry_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False  # stop() was called: the loop starts no new push
        self._in_flight = False  # a patch is on its way to the API server (sent, not answered)
        self.stats = PushStats()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="status-pusher")

    async def stop(self, *, until: float | None = None) -> None:
        """End the periodic pushes. ``until`` (``clock`` time): a push on its way is let finish until then.

        Cancelling a push on its way does not take it back: the API server has the request (HTTP has no way to
        withdraw one) and applies it when it gets to it, possibly after a later push. Before the final push, a
        periodic one taken moments earlier (the halt's position still open) would then land last and stay. So the
        halt stops with ``until``: the pusher starts no new push and waits for the answer to the one on its way
        (the server has applied it then); only past ``until`` is it cancelled. Without ``until`` (closing), it is
        cancelled at once."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if until is not None and self._in_flight and not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), max(0.0, until - self._clock()))
            if not task.done():
                logger.warning("status: a push still on its way at the final push was given up; it may land after it")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        await self.stop()
        await self._api.close()

    async def _loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._interval)
            if self._stopping:
                return
            try:
                await self.push_if_due()
            except Exception:  # a bug here must not end status reporting for good
                logger.exception("status: push failed unexpectedly")

    async def push_if_due(self) -> bool | None:
        """Push if the state changed or the heartbeat is due (respecting backoff); None when nothing was due."""
        now = self._clock()
        if now < self._retry_at or self._another is not None:
            return None
        body = self._snapshot().body()
        key = json.dumps(body, sort_keys=True)
        if key != self._last_sent:
            return await self._send(body, key)
        if self._last_sent_at is None or now - self._last_sent_at >= self._heartbeat_interval:
            sent = await self._send(None, key)
            if sent and self._last_sent is None and not self._stopping:  # the server's state is not ours: now, whole
                body = self._snapshot().body()
                return await self._send(body, json.dumps(body, sort_keys=True))
            return sent
        return None

    async def final_push(self, deadline: float, *, only_if_changed: bool = False) -> bool:
        """Send the current state once more, whatever was sent before, retrying until ``deadline`` (monotonic).
        ``only_if_changed``: only if it differs from the last state the API server accepted (True when it does not);
        the halt's last look: when it does not, one heartbeat asks whether the server still holds it (a push given
        up on may have landed after the final one, and nothing periodic follows a halt), and the state is sent
        again if not."""
        attempt = 0
        looked = False
        while self._another is None:
            body = self._snapshot().body()
            key = json.dumps(body, sort_keys=True)
            if only_if_changed and key == self._last_sent:
                if looked or self._accepted is None:
                    return True
                looked = await self._send(None, key, final=True)  # the answer is compared with what was accepted
                if looked and self._last_sent == key:
                    return True
                if looked:
                    continue  # the server holds something else: the state, whole
            elif await self._send(body, key, final=True):
                return True
            attempt += 1
            delay = Backoff(0.1, 2.0).delay(attempt)
            if self._clock() + delay >= deadline:
                return False
            await asyncio.sleep(delay)
        return True  # the LiveStrategy of this name is another object: nothing of this runtime's is its to show

    async def _send(self, body: dict[str, Any] | None, key: str, *, final: bool = False) -> bool:
        heartbeat = utc_text()
        if body is None:  # nothing changed: the heartbeat alone
            patch: dict[str, Any] = {"status": {"trading": {"heartbeat": heartbeat}}}
        else:
            body["trading"]["heartbeat"] = heartbeat
            patch = {"status": body}
            # Not known accepted until answered: a push the client gives up on may still be applied, at any time.
            self._last_sent = self._accepted = None
        if self._strategy_uid:  # none in a local run (and "" is no uid: written by hand)
            patch["status"]["trading"]["strategyUid"] = self._strategy_uid
        self._in_flight = True
        try:
            answer = await self._api.patch_status(patch)
        except StatusPushError as exc:
            self._failed(str(exc), final)
            return False
        finally:
            self._in_flight = False
        if answer is not None and self._another_object(answer):
            return True  # it landed (nothing takes it back); its stamp tells the new object's readers to ignore it
        if body is not None:
            self._last_sent, self._accepted = key, None if answer is None else runtime_part(answer)
        elif answer is not None and self._accepted is not None:
            self._compare(self._accepted, runtime_part(answer))
        if answer is not None and self._on_answer is not None:
            try:
                self._on_answer(answer)
            except Exception:  # what the runtime reads from the answer must not make the push count as failed
                logger.exception("status: reading the API server's answer failed")
        self.stats.pushes += 1
        if body is None:
            self.stats.heartbeats += 1
        if self.stats.consecutive_failures:
            logger.info("status: pushed again after %d failed attempt(s)", self.stats.consecutive_failures)
        self.stats.consecutive_failures = 0
        self.stats.last_push_at = datetime.now(UTC)
        self._last_sent_at = self._clock()
        self._retry_at = 0.0
        return True

    def _another_object(self, answer: Mapping[str, Any]) -> bool:
        """Whether the LiveStrategy that answered is another object than this runtime's: deleted (its finalizer taken
        off by hand) and applied again while this pod still ran. Then this runtime pushes nothing more into it, and
        reads nothing from it (its RiskBudget share is not this runtime's)."""
        uid = another_object(answer, self._strategy_uid)
        if uid is None:
            return False
        self._another = uid
        logger.warning(
            "status: the LiveStrategy of this name is another object now (uid %s, this pod's %s): it was deleted and "
            "applied again while this pod ran. This runtime pushes nothing more into it; the push that found it "
            "carries this pod's uid, and the operator removes it",
            uid,
            self._strategy_uid,
        )
        if self._on_another is not None:
            try:
                self._on_another(uid)
            except Exception:
                logger.exception("status: acting on the LiveStrategy being another object failed")
        return True

    def _compare(self, accepted: Mapping[str, Any], held: Mapping[str, Any]) -> None:
        """After a heartbeat: whether the API server still holds what it answered to the last whole push (server's
        against server's, so that what it prunes or defaults is no difference); if not, the next push is whole."""
        if held == accepted:
            return
        fields = differing(accepted, held)
        self.stats.restored += 1
        self._last_sent = self._accepted = None  # the next push sends the whole state
        logger.warning(
            "status: the API server holds a trading/risk state other than the one it accepted last from this runtime "
            "(%s differ: a push given up on as timed out may have landed late, the status was written by hand, or a "
            "CRD upgrade gave its fields defaults); "
            "pushing the whole state again",
            ", ".join(fields[:6]) + (f" and {len(fields) - 6} more" if len(fields) > 6 else ""),
        )

    def _failed(self, error: str, final: bool) -> None:
        self.stats.failures += 1
        self.stats.consecutive_failures += 1
        self.stats.last_error = error
        delay = Backoff(RETRY_INITIAL, RETRY_MAX).delay(self.stats.consecutive_failures)
        self._retry_at = self._clock() + jittered(delay)
        log = logger.error if final else logger.warning
        log(
            "status: push %sfailed (attempt %d; the latest state is kept%s): %s",
            "of the final state " if final else "",
            self.stats.consecutive_failures,
            "" if final else f", next try in {delay:.1f}s at most",
            error,
        )
