{{/* The labels the webservice module puts on its objects and pods: the same pod template
     means no new ReplicaSet when Pequod takes the Deployment over. */}}
{{- define "web.selector" -}}
app.kubernetes.io/name: {{ .Release.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "web.labels" -}}
app.kubernetes.io/managed-by: pequod
{{ include "web.selector" . }}
{{- end -}}
