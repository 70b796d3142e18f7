{{/*
The operator's permissions: exactly the API calls it makes, plus what Kubernetes requires
of it to grant its children their permissions (tests/chart/test_rbac.py compares these
rules with the calls recorded from a real operator run).

"livestrat.rbac.namespacedRules": inside a watched namespace (one Role per namespace, or
the ClusterRole when watching all namespaces). "livestrat.rbac.clusterRules": cluster-scoped
resources when watching all namespaces; "livestrat.rbac.clusterReadRules", the read-only
part of them, is all that is cluster-wide when watching named namespaces.
*/}}

{{- define "livestrat.rbac.namespacedRules" -}}
# The LiveStrategies: kopf's watch, its finalizer and annotations, the risk record and the kill
# switch's livestrat.io/halt (patch); where a strategy's annotations do not read, the kill switch
# sets spec.replicas to 0 through the scale subresource instead. get: before a halt, a pod's
# deletion or a name declared taken, the object is read (a watch gap may have deleted it).
# create, delete: a live strategy's paper twin (spec.twin) is a LiveStrategy the operator keeps.
- apiGroups: [livestrat.io]
  resources: [livestrategies]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [livestrat.io]
  resources: [livestrategies/scale]
  verbs: [patch]
# The operator's fields of the status (phase, replicas, conditions, ...). It only patches
# (the strategy pods' Roles grant patch on it too: Kubernetes lets the operator create them
# only because it holds that itself).
- apiGroups: [livestrat.io]
  resources: [livestrategies/status]
  verbs: [patch]
# The strategy pods' Roles let each get its own Namespace (read at SIGTERM: a namespace being
# deleted is a halt); the operator reads one to confirm a kill switch its watch cache shows
# engaged (the cache may hold a namespace deleted during a watch gap). In a Role of a watched
# namespace this reaches that Namespace object only.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
# RiskBudgets: watched, with kopf's finalizer (patch: a budget's deletion releases the members
# it halts); the operator writes their status. A breach marks the members it halts with an
# annotation (livestrat.io/budget-halt.NAME: patch on livestrategies, above); each member's
# share goes into its status.budget (patch on livestrategies/status, above).
- apiGroups: [livestrat.io]
  resources: [riskbudgets]
  verbs: [list, watch, patch]
- apiGroups: [livestrat.io]
  resources: [riskbudgets/status]
  verbs: [patch]
# Children are owned with blockOwnerDeletion: where the OwnerReferencesPermissionEnforcement
# admission plugin runs, that needs update on the owner's finalizers.
- apiGroups: [livestrat.io]
  resources: [livestrategies/finalizers]
  verbs: [update]
# The children of each LiveStrategy: watched (label-selected), created, kept as desired;
# get reads one back when its create conflicts with a copy the watch has not shown yet.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch]
# Strategies made before issue 15 have a headless Service: watched, and deleted (nothing
# reads it; strategy pods are scraped by a PodMonitor).
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, delete]
# A strategy's own service account, or the namespace's shared one (livestrat-runtime, read
# before a pod needs it); a strategy's own is removed once no pod runs as it.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, list, watch, create, patch]
# Each strategy's pod is guarded against voluntary disruption (a drain waits for a decision).
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch]
# A strategy's own Role and RoleBinding (removed once its pod shares the namespace's), or
# the namespace's shared ones.
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, watch, create, patch, delete]
# Strategy pods: watched, and deleted when one runs while the spec says replicas 0.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch, delete]
# Only whether a referenced Secret (credentials, ledger DSN) and its keys exist; a Secret's
# data never goes into a ConfigMap, a status, an event or a log.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# Events that tell each strategy's story (kubectl describe livestrategy NAME).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{/*
Cluster-scoped reads the operator makes in either mode: the namespaces' kill-switch
annotations (a watch of all Namespace objects), the nodes being drained, and kopf's watch of CRDs. Read-only, and
the only cluster-wide grant when the operator watches named namespaces.
*/}}
{{- define "livestrat.rbac.clusterReadRules" -}}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
# Whether a strategy pod's node is being drained (cordoned, or marked for removal), while its
# PodDisruptionBudget holds the pod there: the DisruptionBlocked condition.
- apiGroups: [""]
  resources: [nodes]
  verbs: [list, watch]
{{- end -}}

{{- define "livestrat.rbac.clusterRules" -}}
# The namespaces' kill switches and kopf's CRD watch.
{{ include "livestrat.rbac.clusterReadRules" . }}
{{ include "livestrat.rbac.peeringRules" . }}
{{- end -}}

{{/*
kopf peering (2+ replicas): one ClusterKopfPeering whatever the operator watches (kopf's
keep-alives: list, watch, patch), read by the operator to tell whether it acts (get).
*/}}
{{- define "livestrat.rbac.peeringRules" -}}
{{- if include "livestrat.peering" . }}
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end -}}
