{{/* The chart's name. */}}
{{- define "krust-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the release's objects. */}}
{{- define "krust-operator.fullname" -}}
{{- if contains (include "krust-operator.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "krust-operator.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "krust-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "krust-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator's pods. */}}
{{- define "krust-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "krust-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The service account's name. */}}
{{- define "krust-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "krust-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Lease of the leader election. */}}
{{- define "krust-operator.leaseName" -}}
{{- default (include "krust-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The webhook server's Service (and the name of its certificate). */}}
{{- define "krust-operator.webhookService" -}}
{{- printf "%s-webhook" (include "krust-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Secret holding the webhook server's tls.crt and tls.key. */}}
{{- define "krust-operator.webhookSecret" -}}
{{- default (printf "%s-tls" (include "krust-operator.webhookService" .)) .Values.webhook.certificate.secretName }}
{{- end }}

{{/* How the API server trusts the webhook server: cert-manager's CA injection or a caBundle. */}}
{{- define "krust-operator.webhookCaAnnotation" -}}
{{- if eq .Values.webhook.certificate.source "certManager" }}
cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "krust-operator.webhookService" . }}
{{- end }}
{{- end }}

{{/* The metrics Service (and the name of its certificate). */}}
{{- define "krust-operator.metricsService" -}}
{{- printf "%s-metrics" (include "krust-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Secret holding the secure metrics server's tls.crt, tls.key and ca.crt. */}}
{{- define "krust-operator.metricsSecret" -}}
{{- default (printf "%s-tls" (include "krust-operator.metricsService" .)) .Values.metrics.certificate.secretName }}
{{- end }}
