{{/* Names, labels and the pieces every ebs Deployment shares. */}}

{{- define "ebs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ebs.fullname" -}}
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

{{- define "ebs.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ebs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ebs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ebs.labels" -}}
helm.sh/chart: {{ include "ebs.chart" . }}
{{ include "ebs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ebs
{{- end }}

{{- define "ebs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ebs.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ebs.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Where the ConfigMap's files appear in every container. */}}
{{- define "ebs.configPath" -}}/etc/ebs/ebs.yaml{{- end }}
{{- define "ebs.messagingConfigPath" -}}/etc/ebs/fedora-messaging.toml{{- end }}

{{/*
The secrets a component mounts: the entries of .Values.secrets it lists, minus
those with an empty name. Call with (dict "root" $ "component" $values "name" $name);
returns a YAML list of {key, name, mountPath}.
*/}}
{{- define "ebs.componentSecrets" -}}
{{- $root := .root }}
{{- $out := list }}
{{- range $key := .component.secrets }}
{{- $secret := get $root.Values.secrets $key }}
{{- if not $secret }}
{{- fail (printf "%s.secrets lists %q, which is not defined under .Values.secrets" $.name $key) }}
{{- end }}
{{- if $secret.name }}
{{- $out = append $out (dict "key" $key "name" $secret.name "mountPath" $secret.mountPath) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
Environment for the `temporal` CLI, derived from the ebs config's temporal
section so that the hook Job and the processes cannot disagree.
*/}}
{{- define "ebs.temporalCliEnv" -}}
{{- $t := .Values.config.temporal | default dict }}
- name: TEMPORAL_ADDRESS
  value: {{ $t.address | default "localhost:7233" | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ $t.namespace | default "default" | quote }}
{{- if or $t.tls $t.tls_ca_file $t.tls_cert_file }}
- name: TEMPORAL_TLS
  value: "true"
{{- end }}
{{- with $t.tls_ca_file }}
- name: TEMPORAL_TLS_SERVER_CA_CERT_PATH
  value: {{ . | quote }}
{{- end }}
{{- with $t.tls_cert_file }}
- name: TEMPORAL_TLS_CLIENT_CERT_PATH
  value: {{ . | quote }}
{{- end }}
{{- with $t.tls_key_file }}
- name: TEMPORAL_TLS_CLIENT_KEY_PATH
  value: {{ . | quote }}
{{- end }}
{{- with $t.api_key_file }}
- name: TEMPORAL_API_KEY_FILE
  value: {{ . | quote }}
{{- end }}
{{- with $t.profile }}
- name: TEMPORAL_PROFILE
  value: {{ . | quote }}
{{- end }}
{{- end }}
