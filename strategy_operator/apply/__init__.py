"""How decisions are applied: the writes of a reconciliation, and of a deletion.

``actions`` (halting first, the kill switch, the risk record, the children, pod deletions,
the status, the events; a refused write reported), ``children`` (create or patch only what
differs, never someone else's object), ``own_writes`` (the memory that bridges the watch's lag
behind the operator's own writes), ``finalizer`` (halt before delete).
"""
