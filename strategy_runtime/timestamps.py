"""Times as the status and ``/state`` show them: UTC, to the millisecond, with a trailing Z.

``2026-01-02T10:00:00.123Z``: the one format of every time the runtime reports (the last
fill, a breach, the heartbeat), so a trader reading the status sees one shape only.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_text(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``; a naive datetime is taken as UTC."""
    moment = datetime.now(UTC) if moment is None else moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_text_from_ns(ts: int) -> str:
    """A NautilusTrader timestamp (nanoseconds since the epoch) as ``utc_text`` shows it."""
    return utc_text(datetime.fromtimestamp(ts / 1e9, UTC))
