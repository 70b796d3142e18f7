"""What the runtime tells the world: ``reporter`` (the actor recording fills into the ledger and
knowing the trading state), ``status_push`` (into its own LiveStrategy's status), ``http_server``
and ``metrics`` (``/healthz``, ``/readyz``, ``/metrics``, ``/state``), ``state`` (the ``/state``
document and the metrics snapshot, computed when asked)."""
