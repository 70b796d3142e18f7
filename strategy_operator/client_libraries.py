"""Keeping the operator process free of Kubernetes client libraries it does not use.

kopf imports the models of ``kubernetes`` and ``kubernetes_asyncio`` whenever they are installed
(``kopf._cogs.helpers.thirdparty``: to recognise their objects when a handler passes one to
``kopf.adopt`` and the like). The operator passes plain dicts only and talks to the API through
aiohttp (:mod:`strategy_operator.kube_client`), yet importing kubernetes_asyncio's client package
imports all its generated models and APIs: 80 MiB of a 98 MiB idle operator. The operator's image
does not install it; a virtualenv that carries the runtime too does (the runtime pushes its status
with it), so ``livestrat operator`` marks these packages as not importable before kopf is imported.
kopf then takes them for absent, as it is written to.

Only for the ``livestrat operator`` process: a test process that runs the operator in a thread
also runs code that needs the client (the runtime's status push).
"""

from __future__ import annotations

import sys

# The client libraries kopf would import if installed; none of them is the operator's.
UNUSED = ("kubernetes", "kubernetes_asyncio", "pykube")


def leave_out() -> None:
    """Make ``import`` of the unused client libraries fail (``ImportError``) in this process, as if absent.

    ``None`` in ``sys.modules`` is Python's documented way to make an import raise ``ModuleNotFoundError``;
    a library already imported is left as it is."""
    for name in UNUSED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
