{{- define "pequod.labels" -}}
app.kubernetes.io/name: pequod
app.kubernetes.io/part-of: pequod
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "pequod.selectorLabels" -}}
app.kubernetes.io/name: pequod
app.kubernetes.io/component: operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pequod.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default "pequod" -}}
{{- end -}}
