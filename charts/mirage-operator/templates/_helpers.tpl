{{/*
Names, labels and small computed values shared by the templates.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "mirage-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The full name of the release's objects: fullnameOverride, else the release name when it
already contains the chart name, else the chart name when it starts with the release name
(`helm install mirage` gives "mirage-operator"), else "<release>-<chart>". Truncated to 63 characters
(the limit of a DNS label, which Service names must be).
*/}}
{{- define "mirage-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else if hasPrefix (printf "%s-" .Release.Name) $name -}}
{{- $name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "name-version" for the helm.sh/chart label. */}}
{{- define "mirage-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the operator pod; never change between upgrades. */}}
{{- define "mirage-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mirage-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object of the release. */}}
{{- define "mirage-operator.labels" -}}
{{ include "mirage-operator.selectorLabels" . }}
helm.sh/chart: {{ include "mirage-operator.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mirage
{{- end -}}

{{/* The operator's ServiceAccount name. */}}
{{- define "mirage-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mirage-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference: repository@digest when a digest is set, else repository:tag. */}}
{{- define "mirage-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* "k=v,k2=v2", the format of the operator's label settings, from a map (sorted keys). */}}
{{- define "mirage-operator.labelList" -}}
{{- $pairs := list -}}
{{- range $key, $value := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Whether the operator watches every namespace ("true") or a list ("" otherwise). */}}
{{- define "mirage-operator.clusterwide" -}}
{{- if not (include "mirage-operator.watched" . | fromJsonArray) -}}true{{- end -}}
{{- end -}}

{{/* The namespaces watched, as a JSON list: every shard's, else watch.namespaces. */}}
{{- define "mirage-operator.watched" -}}
{{- $all := list -}}
{{- $names := list -}}
{{- if and .Values.shards .Values.watch.namespaces -}}
{{- fail "shards and watch.namespaces: set one; with shards, each shard's namespaces are watched" -}}
{{- end -}}
{{- range .Values.shards -}}
{{- if has .name $names -}}
{{- fail (printf "shards: two shards are named %s; each names its Deployment and its Lease" .name) -}}
{{- end -}}
{{- $names = append $names .name -}}
{{- range .namespaces -}}
{{- if has . $all -}}
{{- fail (printf "shards: namespace %s is in two shards; each namespace belongs to one" .) -}}
{{- end -}}
{{- $all = append $all . -}}
{{- end -}}
{{- end -}}
{{- if not .Values.shards -}}{{- $all = .Values.watch.namespaces -}}{{- end -}}
{{- toJson $all -}}
{{- end -}}

{{/*
One entry per operator Deployment, as a JSON list: `suffix` of its names, the `namespaces`
it watches, `survey` (every shard's namespaces, on the first shard only) and `shard` (its
name, "" without shards).
*/}}
{{- define "mirage-operator.instances" -}}
{{- $instances := list -}}
{{- if .Values.shards -}}
{{- $all := include "mirage-operator.watched" . | fromJsonArray -}}
{{- range $index, $shard := .Values.shards -}}
{{- $survey := ternary $all list (eq $index 0) -}}
{{- $instances = append $instances (dict "suffix" (printf "-%s" $shard.name) "shard" $shard.name "namespaces" $shard.namespaces "survey" $survey) -}}
{{- end -}}
{{- else -}}
{{- $instances = list (dict "suffix" "" "shard" "" "namespaces" .Values.watch.namespaces "survey" list) -}}
{{- end -}}
{{- toJson $instances -}}
{{- end -}}

{{/*
Names of the chart's CRDs that are in the cluster but not owned by this release (no Helm
ownership annotations naming it), comma-separated: the chart leaves those alone. `lookup`
sees no cluster under `helm template` or a client-side dry run, so there this is empty.
*/}}
{{- define "mirage-operator.foreignCRDs" -}}
{{- $names := list -}}
{{- range $path, $_ := .Files.Glob "files/crds/*.yaml" -}}
{{- $name := (($.Files.Get $path | fromYaml).metadata).name -}}
{{- $live := lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" $name -}}
{{- if $live -}}
{{- $annotations := $live.metadata.annotations | default dict -}}
{{- $release := index $annotations "meta.helm.sh/release-name" | default "" -}}
{{- $namespace := index $annotations "meta.helm.sh/release-namespace" | default "" -}}
{{- if not (and (eq $release $.Release.Name) (eq $namespace $.Release.Namespace)) -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}
