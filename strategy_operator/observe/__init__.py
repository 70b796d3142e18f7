"""What is observed: a strategy as its watch caches show it, and the few API reads that are due.

``caches`` (kopf indexes by strategy), ``reading`` (the spec and status through the API's
models), ``observation`` (the plain data a decision looks at), ``secrets`` (the Secrets a pod
needs), ``observer`` (one reconciliation's observation, put together).
"""
