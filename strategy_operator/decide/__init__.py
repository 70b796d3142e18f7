"""What is decided: pure functions of an observation, no API server, no clock of their own.

``plan`` (replicas, what to apply, which pods to delete), ``phase`` and ``status`` (the
operator's part of the status and its deadlines), ``conditions`` (``metav1.Condition``
semantics), ``drift`` (what differs from what would be built now), ``risk`` (the risk-halt
latch), ``events`` (one per transition), ``runtime_signals`` (what the pod's exit codes and
node states mean).
"""
