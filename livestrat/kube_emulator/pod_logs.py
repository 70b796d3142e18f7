"""``GET /api/v1/namespaces/NS/pods/NAME/log``: a container's log, as the API server serves it from the kubelet.

What the Kubernetes API reference says (core/v1 ``PodLogOptions``, "read log of the specified Pod") and what this
module does:

- ``container``: the container to read; defaults to the only container when the pod has one. A pod with several
  and none named: 400 ``a container name must be specified for pod NAME, choose one of: [...]``; a name the pod
  has not: 400 ``container X is not valid for pod NAME``;
- ``previous``: the previous terminated instance of the container (the one before its last restart); none: 400
  ``previous terminated container "X" in pod "NAME" not found``;
- ``sinceSeconds``: only lines written in the last N seconds (at least 1); ``sinceTime``: only lines from that
  RFC 3339 time; not both (422);
- ``tailLines``: only the last N lines (N >= 0); ``limitBytes``: at most N bytes (N >= 1; the last line may be cut);
- ``timestamps``: each line prefixed with its RFC 3339 (nano) time and a space;
- ``follow``: the response stays open and carries each new line until the container ends;
- a container that has not started: 400 ``container "X" in pod "NAME" is waiting to start: REASON``.
- the body is ``text/plain``; the request is ``get`` on ``pods/log`` for RBAC (the emulator's authorizer).

The lines come from the stand-in kubelet (livestrat/kube_emulator/kubelet.py), which records each line a container writes
in the CRI log format the real kubelet uses (``TIME STREAM F|P LINE``, one file per container instance), through
the :class:`LogSource` the emulator is given. Where it differs: the log is read from the kubelet's files directly,
not through the kubelet's HTTP port; a pod no kubelet runs (created by a test, bound to no process) has an empty
log once its status says the container runs, as a container that wrote nothing.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp.web
import kmock

FOLLOW_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class LogLine:
    time: datetime.datetime
    stream: str  # stdout or stderr
    text: str  # without its newline
    partial: bool = False  # "P": the line goes on in the next record


@dataclass(frozen=True)
class ContainerLog:
    """One instance of a container as the kubelet knows it: its CRI log file, whether it still runs."""

    path: Path | None
    running: bool
    waiting_reason: str | None = None


class LogSource(Protocol):
    def container_log(self, namespace: str, pod: str, container: str, previous: bool) -> ContainerLog | None:
        """The container's current instance (or, with ``previous``, the one before it); None: there is none."""
        ...


def cri_line(moment: datetime.datetime, stream: str, text: str, partial: bool = False) -> bytes:
    """One record of the CRI log format (kubelet's pkg/kubelet/kuberuntime/logs): ``TIME STREAM TAG LOG\\n``."""
    return f"{rfc3339_nano(moment)} {stream} {'P' if partial else 'F'} {text}\n".encode()


def rfc3339_nano(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def read_cri(path: Path | None, offset: int = 0) -> tuple[list[LogLine], int]:
    """The complete records of a CRI log file from ``offset``, and the offset after the last complete one."""
    if path is None or not path.exists():
        return [], offset
    data = path.read_bytes()[offset:]
    lines: list[LogLine] = []
    consumed = 0
    while True:
        end = data.find(b"\n", consumed)
        if end < 0:
            break
        record = data[consumed:end].decode("utf-8", errors="replace")
        consumed = end + 1
        stamp, stream, tag, text = [*record.split(" ", 3), "", "", ""][:4]
        moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")[:26] + "+00:00")
        lines.append(LogLine(moment, stream, text, partial=tag == "P"))
    return lines, offset + consumed


def plain_text(path: Path | None) -> str:
    """The log as ``kubectl logs`` prints it: the lines only."""
    return "".join(_render(line, timestamps=False).decode() for line in read_cri(path)[0])


def _render(line: LogLine, *, timestamps: bool) -> bytes:
    prefix = f"{rfc3339_nano(line.time)} " if timestamps else ""
    return f"{prefix}{line.text}{'' if line.partial else chr(10)}".encode()


def _bad_request(message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=400, reason="BadRequest", message=message)


def _invalid(pod: str, field: str, value: Any, why: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=422,
        reason="Invalid",
        message=f'PodLogOptions "{pod}" is invalid: {field}: Invalid value: {value}: {why}',
    )


@dataclass(frozen=True)
class Options:
    container: str
    follow: bool
    previous: bool
    timestamps: bool
    since: datetime.datetime | None
    tail_lines: int | None
    limit_bytes: int | None


def _int(params: Mapping[str, str], key: str) -> int | None:
    if key not in params:
        return None
    try:
        return int(params[key])
    except ValueError:
        raise _bad_request(f'couldn\'t parse "{key}": invalid value "{params[key]}"') from None


def _bool(params: Mapping[str, str], key: str) -> bool:
    return params.get(key, "false").lower() in ("true", "1")


def options(pod: Mapping[str, Any], params: Mapping[str, str], now: datetime.datetime) -> Options:
    name = pod["metadata"]["name"]
    containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    container = params.get("container") or ""
    if not container:
        if len(containers) != 1:
            raise _bad_request(
                f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
            )
        container = containers[0]
    elif container not in containers:
        raise _bad_request(f"container {container} is not valid for pod {name}")
    since_seconds, tail, limit = _int(params, "sinceSeconds"), _int(params, "tailLines"), _int(params, "limitBytes")
    since_time = params.get("sinceTime")
    if since_seconds is not None and since_time:
        raise _invalid(
            name, "sinceSeconds", since_seconds, "at most one of `sinceTime` or `sinceSeconds` may be specified"
        )
    if since_seconds is not None and since_seconds < 1:
        raise _invalid(name, "sinceSeconds", since_seconds, "must be greater than 0")
    if tail is not None and tail < 0:
        raise _invalid(name, "tailLines", tail, "must be greater than or equal to 0")
    if limit is not None and limit < 1:
        raise _invalid(name, "limitBytes", limit, "must be greater than 0")
    since = None
    if since_seconds is not None:
        since = now - datetime.timedelta(seconds=since_seconds)
    elif since_time:
        try:
            since = datetime.datetime.fromisoformat(since_time.replace("Z", "+00:00"))
        except ValueError:
            raise _bad_request(f'couldn\'t parse "sinceTime": invalid value "{since_time}"') from None
    return Options(
        container=container,
        follow=_bool(params, "follow"),
        previous=_bool(params, "previous"),
        timestamps=_bool(params, "timestamps"),
        since=since,
        tail_lines=tail,
        limit_bytes=limit,
    )


def _started(pod: Mapping[str, Any], container: str) -> str | None:
    """None when the container has started (or ended); else why it waits, as its status says."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            state = status.get("state") or {}
            if "waiting" in state and not status.get("lastState"):
                return (state["waiting"] or {}).get("reason") or "ContainerCreating"
            return None
    return "ContainerCreating"


async def serve(request: kmock.Request, pod: Mapping[str, Any], source: LogSource | None) -> aiohttp.web.StreamResponse:
    """The log subresource of ``pod`` (already read and authorized by the emulator)."""
    now = datetime.datetime.now(datetime.UTC)
    chosen = options(pod, request.params, now)
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    log = source.container_log(namespace, name, chosen.container, chosen.previous) if source else None
    if log is None:
        if chosen.previous:
            raise _bad_request(f'previous terminated container "{chosen.container}" in pod "{name}" not found')
        waiting = _started(pod, chosen.container)
        if waiting is not None:
            raise _bad_request(f'container "{chosen.container}" in pod "{name}" is waiting to start: {waiting}')
        log = ContainerLog(path=None, running=False)
    elif log.waiting_reason is not None and log.path is None:
        raise _bad_request(f'container "{chosen.container}" in pod "{name}" is waiting to start: {log.waiting_reason}')
    lines, offset = read_cri(log.path)
    if chosen.since is not None:
        lines = [line for line in lines if line.time >= chosen.since]
    if chosen.tail_lines is not None:
        lines = lines[len(lines) - chosen.tail_lines :] if chosen.tail_lines else []
    body = b"".join(_render(line, timestamps=chosen.timestamps) for line in lines)
    budget = chosen.limit_bytes
    if budget is not None:
        body = body[:budget]
        budget -= len(body)
    raw = request._raw_request  # as the emulator's watches stream: kmock keeps the aiohttp request here
    response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    await response.prepare(raw)
    await response.write(body)
    if chosen.follow and not chosen.previous and (budget is None or budget > 0):
        await _follow(response, source, namespace, name, chosen, offset, budget)
    await response.write_eof()
    return response


async def _follow(
    response: aiohttp.web.StreamResponse,
    source: LogSource | None,
    namespace: str,
    pod: str,
    chosen: Options,
    offset: int,
    budget: int | None,
) -> None:
    """New lines of the same container instance as they are written, until it ends (or the budget of bytes)."""
    first = source.container_log(namespace, pod, chosen.container, False) if source is not None else None
    while source is not None and first is not None:
        log = source.container_log(namespace, pod, chosen.container, False)
        if log is None or log.path != first.path:  # the instance followed ended and another started
            return
        lines, offset = read_cri(log.path, offset)
        for line in lines:
            chunk = _render(line, timestamps=chosen.timestamps)
            if budget is not None:
                chunk, budget = chunk[:budget], budget - len(chunk[:budget])
            await response.write(chunk)
            if budget is not None and budget <= 0:
                return
        if not log.running:
            return
        await asyncio.sleep(FOLLOW_POLL_SECONDS)
