"""Why the runtime stops: a halt applies ``haltPolicy``; any other stop cancels and never flattens.

Architecture decision 12, a restart is not a halt. Kubernetes sends the same SIGTERM for a halt
(``spec.replicas: 0``, the kill switch, a risk halt under ``ScaleToZero``, deletion) as for
everything else that stops a pod: a drain, an eviction, Spot preemption, an ``Auto`` rollout, a
``restartNonce``. Only the first closes positions under ``haltPolicy: flatten``; the others cancel
the orders (the next start reconciles with the venue) and leave the positions alone.

So, at SIGTERM, a pod asks the API server, fresh: it GETs its own LiveStrategy (through the status
subresource, which its Role already allows) and reads the operator's decision, ``status.halt``
(:class:`livestrat.api.status.HaltRecord`), which the operator writes before it tells the pod to
stop and removes before it lets a pod start. A LiveStrategy being deleted is a halt too (with a
foreground deletion the garbage collector may stop the pod before the operator has written its
record). Why not a file (a ConfigMap or downward-API volume): the kubelet refreshes those only
after its sync delay (a minute or more), so at SIGTERM they may not show the halt yet.

A LiveStrategy that no longer exists is a halt too: the API server answering that no object of that name is
there (404 NotFound, naming it) has deleted it, and no pod will ever take the position back. With its finalizer the
object outlives the pod (being deleted, above); without it (the finalizer taken off by hand while the operator was
down, the usual way out of a stuck deletion) the object is gone before the garbage collector stops the pod.

A namespace being deleted is a halt too: it deletes every LiveStrategy in it, and Kubernetes 1.33+ stops its pods
before anything else there (``OrderedNamespaceDeletion``), so the pod stops while its LiveStrategy is not being
deleted yet and no operator has recorded anything. An answer without a record is followed by a read of the pod's
own Namespace (its Role may ``get`` that one object): ``status.phase: Terminating`` is a halt. A Namespace that
cannot be read leaves the answer as it was (no halt), and says why.

Anything else is not a halt: no record, a LiveStrategy of that name that is another object, or no
answer in time (a partition, an API server down): flattening positions nobody asked to close is
the worse error, and a halt without its flatten still cancels every order and is said so in the log.

The lookup starts the moment the signal arrives and runs beside the cancels, which every stop
does; only the flatten step waits for its answer. "In time" is a window, not one request's timeout:
a read that fails (a connection reset, a 503, the client's own request timeout) is asked again, and
a slow answer is waited for, until the window ends (the runtime gives it the cancel share of its halt
budget, ``runtime.halt_record_window``). A loaded API server is not a partition: taking its slow
answer for no halt would leave open the very position the halt was asked to close.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from livestrat.api.status import HaltRecord, another_object

# Between two reads of the halt record, after one failed.
HALT_RECORD_RETRY_SECONDS = 0.2

ReadOwn = Callable[[], Awaitable[Mapping[str, Any]]]  # GET of the runtime's own LiveStrategy
ReadNamespace = Callable[[], Awaitable[Mapping[str, Any]]]  # GET of the runtime's own Namespace


class LiveStrategyGone(Exception):
    """What ``ReadOwn`` raises when the API server answers that the runtime's LiveStrategy does not exist (a 404
    NotFound naming it): an answer, not a failed read."""


@dataclass(frozen=True)
class StopCause:
    """``halt``: whether ``haltPolicy`` applies (flatten closes positions); ``why``: said in logs and ``/state``."""

    halt: bool
    why: str


def halt(why: str) -> StopCause:
    return StopCause(True, why)


def not_a_halt(why: str) -> StopCause:
    return StopCause(False, why)


# This object, not being deleted, with no halt record: the one answer its Namespace may turn into a halt.
NO_RECORD = not_a_halt("no halt record (status.halt): a restart, a rollout, an eviction, a drain or a lost node")


def cause_from(body: Mapping[str, Any], uid: str | None) -> StopCause:
    """What the LiveStrategy, as the API server returned it, says about this stop."""
    meta = body.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    other = another_object(body, uid)
    if other is not None:
        return not_a_halt(f"the LiveStrategy of this name is another object (uid {other}, this pod's {uid})")
    if meta.get("deletionTimestamp"):
        return halt("the LiveStrategy is being deleted")
    status = body.get("status")
    record = status.get("halt") if isinstance(status, Mapping) else None
    if record is None:
        return NO_RECORD
    try:
        parsed = HaltRecord.model_validate(record)
    except ValidationError:
        return not_a_halt(f"status.halt does not read ({str(record)[:200]}): taken for no halt")
    said = f": {parsed.message}" if parsed.message else ""
    return halt(f"the operator halted it since {parsed.since} ({parsed.reason}{said})")


async def ask_the_operator(
    read_own: ReadOwn,
    uid: str | None,
    window: float,
    retry_seconds: float = HALT_RECORD_RETRY_SECONDS,
    read_namespace: ReadNamespace | None = None,
) -> StopCause:
    """The cause of a SIGTERM, from the LiveStrategy as the API server has it now; never raises.

    A read that fails is asked again after ``retry_seconds``, and an answer is waited for, until ``window`` seconds
    have passed; then the stop is not a halt, with the last failure as the reason. An answer that the LiveStrategy
    does not exist (:class:`LiveStrategyGone`) is a halt: it was deleted. An answer without a halt record asks
    ``read_namespace`` (within the window) whether the namespace is being deleted."""
    until = time.monotonic() + window
    attempts = 0
    while True:
        attempts += 1
        try:
            body = await asyncio.wait_for(read_own(), max(0.0, until - time.monotonic()))
        except TimeoutError:
            failure = f"no answer within {window:g}s"
        except LiveStrategyGone as gone:
            return halt(f"the LiveStrategy no longer exists: it was deleted ({gone})")
        except Exception as exc:  # its text carries the HTTP status and message, never a token
            failure = str(exc)
        else:
            cause = cause_from(body, uid)
            if read_namespace is not None and cause is NO_RECORD:
                return await namespace_cause(read_namespace, cause, until)
            return cause
        if time.monotonic() + retry_seconds >= until:
            tried = f", {attempts} reads" if attempts > 1 else ""
            return not_a_halt(f"the halt record could not be read ({failure}{tried}): taken for no halt")
        await asyncio.sleep(retry_seconds)


async def namespace_cause(read_namespace: ReadNamespace, cause: StopCause, until: float) -> StopCause:
    """``cause`` (no halt record), unless the pod's Namespace is being deleted: then a halt."""
    try:
        namespace = await asyncio.wait_for(read_namespace(), max(0.0, until - time.monotonic()))
    except TimeoutError:
        return not_a_halt(f"{cause.why}; its namespace was not read in time")
    except Exception as exc:  # its text carries the HTTP status and message, never a token
        return not_a_halt(f"{cause.why}; its namespace could not be read ({exc})")
    status = namespace.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    if phase == "Terminating":
        return halt("its namespace is being deleted, and the LiveStrategy with it (status.phase: Terminating)")
    return cause


async def settled(cause: Awaitable[StopCause], deadline: float) -> StopCause:
    """The cause, waited for until ``deadline`` (``time.monotonic()``) at the latest; not a halt past it."""
    try:
        return await asyncio.wait_for(asyncio.shield(cause), max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        return not_a_halt("the halt record was not read in time: taken for no halt")


def known(cause: StopCause) -> asyncio.Future[StopCause]:
    """A cause known at once, in the shape of one being looked up."""
    future: asyncio.Future[StopCause] = asyncio.get_running_loop().create_future()
    future.set_result(cause)
    return future
