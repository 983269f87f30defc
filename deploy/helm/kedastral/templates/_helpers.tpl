{{- define "kedastral.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kedastral.labels" -}}
app.kubernetes.io/part-of: kedastral
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kedastral.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "kedastral.redisSecretName" -}}
{{- .Values.storage.redis.passwordSecret.name | default (printf "%s-redis" (include "kedastral.fullname" .)) -}}
{{- end -}}

{{- define "kedastral.redisSecretKey" -}}
{{- .Values.storage.redis.passwordSecret.key | default "password" -}}
{{- end -}}

{{- define "kedastral.redisAddr" -}}
{{- .Values.storage.redis.addr | default (printf "%s-redis.%s.svc:6379" (include "kedastral.fullname" .) .Release.Namespace) -}}
{{- end -}}

{{/* The forecaster's TOML config: one [[workload]] table per entry, every
key but `scaledObject` passed through as the forecaster reads it. */}}
{{- define "kedastral.workloadsToml" -}}
{{- range $w := .Values.workloads }}
[[workload]]
{{- range $key, $value := omit $w "scaledObject" }}
{{- if kindIs "map" $value }}
{{ $key }} = { {{- $first := true }}{{ range $k, $v := $value }}{{ if not $first }},{{ end }}{{ $first = false }} {{ $k | toJson }} = {{ $v | toString | toJson }}{{ end }} }
{{- else if kindIs "string" $value }}
{{ $key }} = {{ $value | toJson }}
{{- else }}
{{ $key }} = {{ $value }}
{{- end }}
{{- end }}
{{ end }}
{{- end -}}

{{- define "kedastral.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{- define "kedastral.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
{{- end -}}
