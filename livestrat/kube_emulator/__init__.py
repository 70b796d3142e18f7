"""A Kubernetes API emulator (kmock's, made strict) and a stand-in kubelet that starts real runtimes.

No cluster is needed to watch the operator work: the tests and benchmarks run the real operator
against :mod:`livestrat.kube_emulator.emulator`, with :mod:`livestrat.kube_emulator.kubelet` playing the
StatefulSet controller and the kubelet. Its packages come with the ``demo`` extra (kmock, attrs, jsonpatch).
"""
