{{/* Names, labels and images shared by every template. */}}

{{- define "livestrat.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: fullnameOverride, the release name, or RELEASE-livestrat-operator. */}}
{{- define "livestrat.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Cluster-scoped objects are shared by every release: their names carry the namespace. */}}
{{- define "livestrat.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "livestrat.fullname" .) | trunc 253 -}}
{{- end -}}

{{- define "livestrat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "livestrat.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: with serviceAccount.create=false, name the existing ServiceAccount" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "livestrat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "livestrat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "livestrat.labels" -}}
{{ include "livestrat.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: livestrat
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
What the operator gives every strategy pod and its headless Service (strategy_operator/labels.py,
children.py; tests/chart/test_operator_contract.py checks these against the operator's builders):
labels, the container port of /metrics, and the Service's port.
*/}}
{{- define "livestrat.strategyPodLabels" -}}
app.kubernetes.io/name: livestrat
app.kubernetes.io/component: strategy
{{- end -}}
{{- define "livestrat.strategyContainerPort" -}}http{{- end -}}

{{/* repository:tag or repository@digest; the tag defaults to the chart's appVersion. */}}
{{- define "livestrat.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .appVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "livestrat.operatorImage" -}}
{{- include "livestrat.image" (dict "image" .Values.image "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{- define "livestrat.runtimeImage" -}}
{{- include "livestrat.image" (dict "image" .Values.runtime.image "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{/* Peering (kopf) is on with two or more replicas: the name of its objects, else empty. */}}
{{- define "livestrat.peering" -}}
{{- if gt (int .Values.replicaCount) 1 -}}{{ include "livestrat.clusterName" . }}{{- end -}}
{{- end -}}

{{/* Namespaces that get the strategy NetworkPolicy. */}}
{{- define "livestrat.networkPolicyNamespaces" -}}
{{- $ns := .Values.networkPolicy.namespaces | default .Values.watchNamespaces | default (list .Release.Namespace) -}}
{{- toJson (uniq $ns) -}}
{{- end -}}

{{- /*
The strategy pods' identity the operator uses (LIVESTRAT_RUNTIME_IDENTITY): "shared" only where the
runtime-identity admission policy is rendered with it, so that a pod may never patch another
strategy's status (templates/runtime-identity-policy.yaml).
*/ -}}
{{- define "livestrat.runtimeIdentity" -}}
{{- $wanted := .Values.security.runtimeIdentity -}}
{{- $served := .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy" -}}
{{- if eq $wanted "perStrategy" -}}perStrategy
{{- else if $served -}}shared
{{- else if eq $wanted "shared" -}}
{{- fail "security.runtimeIdentity is shared, but this cluster does not serve ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, Kubernetes 1.30+), which keeps each strategy pod to its own status: set security.runtimeIdentity to auto or perStrategy (with helm template, pass --api-versions admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy if the target cluster serves it)" -}}
{{- else -}}perStrategy
{{- end -}}
{{- end -}}
