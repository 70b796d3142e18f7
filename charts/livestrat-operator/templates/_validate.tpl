{{/*
Checks across values that values.schema.json cannot express. Every problem is collected
and the install fails once, listing them all, each naming the value and what to do.
Included by templates/operator.yaml (always rendered).
*/}}
{{- define "livestrat.validate" -}}
{{- $problems := list -}}
{{- $watched := uniq .Values.watchNamespaces -}}
{{- range $ns := .Values.liveTrading.allowedNamespaces }}
{{- if and $watched (not (has $ns $watched)) }}
{{- $problems = append $problems (printf "liveTrading.allowedNamespaces: %q is not watched; add it to watchNamespaces %v, or remove it" $ns $watched) }}
{{- end }}
{{- end }}
{{- if eq (int .Values.ports.metrics) (int .Values.ports.health) }}
{{- $problems = append $problems (printf "ports.metrics and ports.health are both %v: give the operator's metrics and its health endpoint different ports" .Values.ports.metrics) }}
{{- end }}
{{- if .Values.requireImageDigests }}
{{- if not .Values.image.digest }}
{{- $problems = append $problems "image.digest is empty but requireImageDigests is true: pin the operator image by digest (sha256:..., the digest `docker push` printed; docs/install.md, \"Images\")" }}
{{- end }}
{{- if not .Values.runtime.image.digest }}
{{- $problems = append $problems "runtime.image.digest is empty but requireImageDigests is true: pin the strategies' default runtime image by digest (sha256:...; docs/install.md, \"Images\")" }}
{{- end }}
{{- end }}
{{- if .Values.networkPolicy.enabled }}
{{- $np := .Values.networkPolicy }}
{{- if not $np.apiServer.cidrs }}
{{- $problems = append $problems (printf "networkPolicy.apiServer.cidrs is empty: with networkPolicy.enabled, name the API server's endpoint addresses (kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes), e.g. --set-json 'networkPolicy.apiServer.cidrs=[\"172.18.0.2/32\"]'; an empty list would open ports %s to every address, in the cluster and outside it (docs/install.md, \"Network policy\")" (join ", " $np.apiServer.ports)) }}
{{- end }}
{{- $ledgerNeeded := "" }}
{{- if .Values.defaults.ledger.secretName }}
{{- $ledgerNeeded = printf "defaults.ledger.secretName is %q" .Values.defaults.ledger.secretName }}
{{- else if .Values.liveTrading.allowedNamespaces }}
{{- $ledgerNeeded = printf "live trading is allowed in %v and needs PostgreSQL" .Values.liveTrading.allowedNamespaces }}
{{- end }}
{{- if and $ledgerNeeded (not $np.ledger.cidrs) (not $np.ledger.to) }}
{{- $problems = append $problems (printf "networkPolicy.ledger: strategies need the PostgreSQL ledger (%s) but the NetworkPolicy allows no egress to it: set networkPolicy.ledger.cidrs (its addresses, e.g. [\"10.20.0.5/32\"]) or networkPolicy.ledger.to (selectors of an in-cluster PostgreSQL)" $ledgerNeeded) }}
{{- end }}
{{- end }}
{{- if $problems }}
{{- fail (printf "\n  - %s" (join "\n  - " $problems)) }}
{{- end }}
{{- end -}}
