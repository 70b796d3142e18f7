"""``livestrat demo``: the real operator on this machine, no cluster needed.

The Kubernetes API emulator (:mod:`livestrat.kube_emulator`) serves the LiveStrategy CRD and the chart's
admission policy; a real ``livestrat operator`` process logs in as the chart's ServiceAccount with the chart's
RBAC; the stand-in kubelet starts a real ``livestrat runtime`` process for each strategy pod; the examples
that run without a venue or a cluster are applied with a paced replay. A kubeconfig is written so the real
``kubectl`` works from another terminal. Ctrl-C stops everything it started.

- ``options``: the command line; ``examples``: which examples run here, and their pace;
- ``chart``: the CRD's and the operator's RBAC as the chart installs them;
- ``cluster``: the emulator, the kubelet and the operator, started and stopped;
- ``script``: what it prints; ``main``: the command.
"""
