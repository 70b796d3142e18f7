"""The errors the ledger raises: all are ``LedgerError`` (``FencedOut`` too, in ``fencing``)."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger raises."""


class LedgerUnavailable(LedgerError):
    """The ledger's database cannot be reached or opened."""


class LedgerSchemaError(LedgerError):
    """The database holds a ledger schema this runtime does not know."""


class LedgerClosed(LedgerError):
    """A fill was recorded on a ledger that is not open."""


class LedgerFlushTimeout(LedgerError):
    """``close()`` ran out of time with fills still uncommitted (each is logged at ERROR)."""

    def __init__(self, pending: int, where: str) -> None:
        super().__init__(
            f"{pending} fill(s) not committed to the ledger at {where} before the close timeout; "
            "each was logged at ERROR level: replay them (writes are idempotent) once the database is back"
        )
        self.pending = pending
