"""How the runtime finds the Kubernetes API (the operator logs in through kopf: ``strategy_operator.kube_client``).

In a pod (``KUBERNETES_SERVICE_HOST`` set): its service account. Elsewhere: the kubeconfig
named by ``$KUBECONFIG``, else ``~/.kube/config``. The path is passed explicitly because
kubernetes_asyncio reads ``$KUBECONFIG`` at import time otherwise (a test or a command that
sets it later would be ignored).

kubernetes_asyncio is imported here only when called: the images that carry the API models
without a Kubernetes client (``livestrat validate``) never need it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


async def client_configuration(environ: Mapping[str, str] = os.environ) -> Any:
    """A ``kubernetes_asyncio.client.Configuration`` for this process's cluster."""
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    if environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        await config.load_kube_config(config_file=environ.get("KUBECONFIG") or None, client_configuration=configuration)
    return configuration
