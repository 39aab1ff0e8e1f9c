{{/* Names, labels and shared snippets of the jobplane chart. */}}

{{/* The chart's name, overridable with nameOverride. */}}
{{- define "jobplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release-qualified name every resource starts with (63 characters at most, a DNS label). */}}
{{- define "jobplane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart label: name-version, as Helm's own starter chart writes it. */}}
{{- define "jobplane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. The chart version is here, never in selectors (they are immutable). */}}
{{- define "jobplane.labels" -}}
helm.sh/chart: {{ include "jobplane.chart" . }}
{{ include "jobplane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: jobplane
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the pods of one release; add app.kubernetes.io/component per component. */}}
{{- define "jobplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jobplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The image of every chart pod, and of job pods whose queue names none. */}}
{{- define "jobplane.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else -}}
{{ printf "%s:%s" .Values.image.repository $tag }}
{{- end -}}
{{- end }}

{{/* ServiceAccount names. */}}
{{- define "jobplane.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (printf "%s-operator" (include "jobplane.fullname" .)) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "jobplane.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- default (printf "%s-api" (include "jobplane.fullname" .)) .Values.api.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "jobplane.syncJobs.serviceAccountName" -}}
{{- printf "%s-sync-jobs" (include "jobplane.fullname" .) }}
{{- end }}

{{/* Every namespace JobRuns run in: the release's own, then runNamespaces (opt-in, listed). */}}
{{- define "jobplane.runNamespaces" -}}
{{- $all := list .Release.Namespace }}
{{- range .Values.runNamespaces }}
{{- if not (has . $all) }}
{{- $all = append $all . }}
{{- end }}
{{- end }}
{{- toJson $all }}
{{- end }}

{{/* The run-token Secret: the user's, or the one the chart generates once and keeps. */}}
{{- define "jobplane.runToken.secretName" -}}
{{- default (printf "%s-run-token" (include "jobplane.fullname" .)) .Values.runToken.existingSecret }}
{{- end }}

{{/* The Secret holding the database URL, and its key. */}}
{{- define "jobplane.database.secretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else if .Values.postgresql.enabled }}
{{- printf "%s-postgresql" (include "jobplane.fullname" .) }}
{{- else }}
{{- printf "%s-database" (include "jobplane.fullname" .) }}
{{- end }}
{{- end }}

{{- define "jobplane.database.secretKey" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecretKey }}
{{- else }}
{{- "url" }}
{{- end }}
{{- end }}

{{/* Fail early when no database is configured. */}}
{{- define "jobplane.database.validate" -}}
{{- if not (or .Values.database.existingSecret .Values.database.url .Values.postgresql.enabled) }}
{{- fail "a database is required: set database.existingSecret, database.url or postgresql.enabled=true" }}
{{- end }}
{{- end }}

{{/* The URL job pods report to: operator.apiURL, else the API Service's cluster DNS name. */}}
{{- define "jobplane.apiURL" -}}
{{- if .Values.operator.apiURL }}
{{- .Values.operator.apiURL }}
{{- else }}
{{- printf "http://%s-api.%s.svc:%d" (include "jobplane.fullname" .) .Release.Namespace (int .Values.api.service.port) }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every chart pod: pull secrets, host network, scheduling. */}}
{{- define "jobplane.podCommon" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .root.Values.hostNetwork }}
hostNetwork: true
dnsPolicy: ClusterFirstWithHostNet
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with (.component.nodeSelector | default .root.Values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.component.tolerations | default .root.Values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* Environment shared by every chart container (extraEnv: apiserver address overrides and the like). */}}
{{- define "jobplane.extraEnv" -}}
{{- with .root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .component.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The writable /tmp every chart container gets (its root filesystem is read-only). */}}
{{- define "jobplane.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{/* The Secret holding the job-data database's URL in every run namespace, and its key; empty: none. */}}
{{- define "jobplane.dataDatabase.secretName" -}}
{{- if .Values.dataDatabase.existingSecret }}
{{- .Values.dataDatabase.existingSecret }}
{{- else if .Values.dataDatabase.url }}
{{- printf "%s-data-database" (include "jobplane.fullname" .) }}
{{- end }}
{{- end }}

{{- define "jobplane.dataDatabase.secretKey" -}}
{{- if .Values.dataDatabase.existingSecret }}
{{- .Values.dataDatabase.existingSecretKey }}
{{- else }}
{{- "url" }}
{{- end }}
{{- end }}
