"""The kopf operator: reconciles LiveStrategy resources into one strategy pod each. Never imports nautilus_trader.

Laid out by concern (see docs/architecture.md): ``observe/`` (what is seen: caches, the spec
and status through the API's models, the Secrets a pod needs), ``decide/`` (pure decisions:
plan, phase, status, conditions, drift, risk, events, what the runtime's signals mean),
``build/`` (pure builders of the children, and apart from them the admission-like policy),
``apply/`` (the writes: halting first, children, own-write memory, the finalizer);
``reconciler.py`` sequences one pass, ``handlers.py`` wires it into kopf.
"""
