"""What is built: pure functions of the spec and the operator's settings.

``manifests`` (the children), ``configuration`` (the pod's ``runtime.json`` and the hashes of
what a pod runs), ``labels`` (names, labels, annotations), and, apart from the builders,
``policy`` (the admission-like checks of what may run here, and the Secrets a pod needs).
"""
