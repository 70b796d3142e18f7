{{/*
The operator's permissions: exactly the API calls it makes, plus what Kubernetes requires
of it to grant its children their permissions (tests/chart/test_rbac.py compares these
rules with the calls recorded from a real operator run).

"livestrat.rbac.namespacedRules": inside a watched namespace (one Role per namespace, or
the ClusterRole when watching all namespaces). "livestrat.rbac.clusterRules": cluster-scoped
resources, only when watching all namespaces.
*/}}

{{- define "livestrat.rbac.namespacedRules" -}}
# The LiveStrategies themselves: watch, finalizer and kopf's annotations (patch).
- apiGroups: [livestrat.io]
  resources: [livestrategies]
  verbs: [get, list, watch, patch]
# The operator's fields of the status (phase, replicas, conditions, ...). Holding get+patch
# here is also what lets the operator grant a strategy pod its Role on its own status:
# Kubernetes refuses to create a Role granting more than its creator holds.
- apiGroups: [livestrat.io]
  resources: [livestrategies/status]
  verbs: [get, patch]
# Children are owned with blockOwnerDeletion; clusters enforcing OwnerReferencesPermission
# require update on the owner's finalizers for that.
- apiGroups: [livestrat.io]
  resources: [livestrategies/finalizers]
  verbs: [update]
# The children of each LiveStrategy.
- apiGroups: [""]
  resources: [configmaps, services, serviceaccounts]
  verbs: [get, list, watch, create, patch]
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, list, watch, create, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, watch, create, patch]
# Strategy pods: watched, and removed when one runs while the spec says replicas 0.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, delete]
# Only to check that a referenced Secret exists (credentials, ledger DSN); never read into
# a ConfigMap, a status, an event or a log.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# Events that tell each strategy's story (kubectl describe livestrategy NAME).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- if and (include "livestrat.peering" .) .Values.watchNamespaces }}
# kopf peering: keep-alives of the operator replicas, one object per watched namespace.
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [list, watch, patch]
{{- end }}
{{- end -}}

{{- define "livestrat.rbac.clusterRules" -}}
# The namespace kill switch (an annotation on the Namespace), and kopf's namespace scan.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
# kopf watches CRDs to notice the LiveStrategy CRD being (re)installed.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if include "livestrat.peering" . }}
# kopf peering: keep-alives of the operator replicas.
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  verbs: [list, watch, patch]
{{- end }}
{{- end -}}
