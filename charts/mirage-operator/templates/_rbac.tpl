{{/*
The operator's RBAC rules: one rule per row of the table in
operator/mirage_operator/k8s/resources.py, its comment the row's `why`, nothing else.
tests/chart/test_rbac.py derives the expected rules from that table and fails on any
difference (a verb more or less, a missing comment).

Rules are grouped by where they apply:
- namespaced: everything the operator does inside a watched namespace;
- tenantToken: TokenRequests for the tenants' Vault ServiceAccount (tenant auth mode);
- cluster: cluster-scoped resources kopf itself needs;
- self: what the operator needs in its own namespace.
*/}}

{{/* The resource table's `why` of a Mirage kind the shard survey lists. */}}
{{- define "mirage-operator.why" -}}
{{- if eq . "mirageservices" -}}
kopf watches MirageServices and records its handler progress on them
{{- else -}}
watched and reconciled; also applied as children of MirageServices
{{- end -}}
{{- end -}}

{{- define "mirage-operator.rules.namespaced" -}}
# kopf watches MirageServices and records its handler progress on them
- apiGroups: ["mirage.dev"]
  resources: ["mirageservices"]
  verbs: ["get", "list", "watch", "patch"]
# the operator reports observedGeneration, conditions and children
- apiGroups: ["mirage.dev"]
  resources: ["mirageservices/status"]
  verbs: ["get", "patch"]
# watched and reconciled; also applied as children of MirageServices
- apiGroups: ["mirage.dev"]
  resources: ["vaultsecrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# the operator reports sync state and the data's HMAC
- apiGroups: ["mirage.dev"]
  resources: ["vaultsecrets/status"]
  verbs: ["get", "patch"]
# watched and reconciled; also applied as children of MirageServices
- apiGroups: ["mirage.dev"]
  resources: ["servicelevelobjectives"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# the operator reports the generated rule set
- apiGroups: ["mirage.dev"]
  resources: ["servicelevelobjectives/status"]
  verbs: ["get", "patch"]
# each service runs under its own ServiceAccount
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# service configuration and Grafana dashboards
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Secrets synced from Vault, and the operator's keys and kept Vault tokens
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# each service's Service
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# kopf and the operator report what they did as Events
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# each service's Deployment; rollout restarts after secret rotation
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# rollout restarts named by a VaultSecret's rolloutRestartTargets
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "patch"]
# rollout restarts named by a VaultSecret's rolloutRestartTargets
- apiGroups: ["apps"]
  resources: ["daemonsets"]
  verbs: ["get", "patch"]
# autoscaling of a service's Deployment
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# voluntary disruption limits of a service
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# default-deny ingress with the allowed callers of a service
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Traefik ingress of a service
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Prometheus scraping of a service's metrics
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# SLO recording and alerting rules, custom rules
- apiGroups: ["monitoring.coreos.com"]
  resources: ["prometheusrules"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# mTLS mode of a service's pods in the Istio mesh
- apiGroups: ["security.istio.io"]
  resources: ["peerauthentications"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# the mesh callers allowed in (the NetworkPolicy's twin) and the JWT requirement
- apiGroups: ["security.istio.io"]
  resources: ["authorizationpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# the JWT issuer and keys of a service's API
- apiGroups: ["security.istio.io"]
  resources: ["requestauthentications"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# connection pool and outlier detection of a service in the mesh
- apiGroups: ["networking.istio.io"]
  resources: ["destinationrules"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Traefik forwardAuth to the platform's OAuth2 Proxy (OIDC sign-in)
- apiGroups: ["traefik.io"]
  resources: ["middlewares"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end -}}

{{- define "mirage-operator.rules.tenantToken" -}}
{{- if eq .Values.vault.auth.mode "tenant" }}
# short-lived tokens of the tenant's Vault ServiceAccount for Vault kubernetes auth
# (of that ServiceAccount only: minting tokens of any other would impersonate workloads)
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  resourceNames: [{{ .Values.vault.auth.serviceAccount | quote }}]
  verbs: ["create"]
{{- end }}
{{- end -}}

{{- define "mirage-operator.rules.cluster" -}}
# kopf discovers the resources it serves
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- if .Values.shards }}
{{- range $resource := list "mirageservices" "vaultsecrets" "servicelevelobjectives" }}
# {{ include "mirage-operator.why" $resource }}
# (list only, cluster-wide: the first shard reports the namespaces no shard owns)
- apiGroups: ["mirage.dev"]
  resources: [{{ $resource | quote }}]
  verbs: ["list"]
{{- end }}
{{- end }}
{{- if not (include "mirage-operator.clusterwide" .) }}
# kopf follows namespaces when watching a namespace pattern
# (only in namespaced scope: watching every namespace, kopf never lists them)
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- end -}}

{{- define "mirage-operator.rules.self" -}}
{{- $fullname := include "mirage-operator.fullname" . }}
{{- if not (include "mirage-operator.clusterwide" .) }}
{{- $secrets := list .Values.operator.hmacKeySecret }}
{{- with .Values.operator.vaultTokenSecret }}
{{- $secrets = concat $secrets (list . $.Values.operator.vaultTokenKeySecret) }}
{{- end }}
# Secrets synced from Vault, and the operator's keys and kept Vault tokens
# (here: those of its own only; the ClusterRole of cluster-wide scope covers them otherwise)
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ toJson $secrets }}
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end }}
{{- if .Values.leaderElection.enabled }}
{{- $leases := list }}
{{- range include "mirage-operator.instances" . | fromJsonArray }}
{{- $leases = append $leases (printf "%s%s" $fullname .suffix) }}
{{- end }}
# leader election among the operator's replicas (its own Lease, by name)
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: {{ toJson $leases }}
  verbs: ["get", "update"]
# leader election among the operator's replicas (its own Lease, by name)
# (creating cannot be narrowed to a name; this Role holds it in the release namespace only)
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
{{- end }}
{{- if eq .Values.vault.auth.mode "operator" }}
# short-lived tokens of the tenant's Vault ServiceAccount for Vault kubernetes auth
# (operator auth mode: the operator's own ServiceAccount logs in, and no other)
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  resourceNames: [{{ include "mirage-operator.serviceAccountName" . | quote }}]
  verbs: ["create"]
{{- end }}
{{- end -}}
