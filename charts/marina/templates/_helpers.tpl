{{/*
The chart's name, or nameOverride.
*/}}
{{- define "marina.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of every resource: fullnameOverride, else "<release>-<name>", or just the release
name when it already contains the chart's name. Truncated to 63 characters (DNS labels).
*/}}
{{- define "marina.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "marina.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "marina.labels" -}}
helm.sh/chart: {{ include "marina.chart" . }}
{{ include "marina.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The labels that select the pods (immutable in a DaemonSet's selector: never add to them).
*/}}
{{- define "marina.selectorLabels" -}}
app.kubernetes.io/name: {{ include "marina.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "marina.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
The port Marina listens on: config.apiPort, else Marina's default.
*/}}
{{- define "marina.apiPort" -}}
{{- .Values.config.apiPort | default 8080 }}
{{- end }}

{{/*
Where the auth password file is mounted, and the path config.authPasswordFile gets.
*/}}
{{- define "marina.authSecretDir" -}}
/run/secrets/marina
{{- end }}

{{- define "marina.authPasswordFile" -}}
{{- printf "%s/auth-password" (include "marina.authSecretDir" .) }}
{{- end }}

{{/*
The Secret and key holding the auth password: auth.existingSecret, else the chart's Secret.
*/}}
{{- define "marina.authSecretName" -}}
{{- .Values.auth.existingSecret | default (include "marina.fullname" .) }}
{{- end }}

{{- define "marina.authSecretKey" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecretKey }}
{{- else -}}
auth-password
{{- end }}
{{- end }}

{{/*
The auth password for the chart's Secret: auth.password, else the one already in the
Secret (so upgrades keep it), else a new random one.
*/}}
{{- define "marina.authPassword" -}}
{{- if .Values.auth.password }}
{{- .Values.auth.password }}
{{- else }}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "marina.fullname" .) | default dict }}
{{- $current := dig "data" "auth-password" "" $secret }}
{{- if $current }}
{{- $current | b64dec }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Whether Marina gets RESTIC_PASSWORD, and from which Secret and key.
*/}}
{{- define "marina.resticPasswordSet" -}}
{{- if or .Values.resticPassword.existingSecret .Values.resticPassword.value }}true{{ end }}
{{- end }}

{{- define "marina.resticSecretName" -}}
{{- .Values.resticPassword.existingSecret | default (include "marina.fullname" .) }}
{{- end }}

{{- define "marina.resticSecretKey" -}}
{{- if .Values.resticPassword.existingSecret }}
{{- .Values.resticPassword.existingSecretKey }}
{{- else -}}
restic-password
{{- end }}
{{- end }}

{{/*
Marina's config.yml: .Values.config with the settings the pod's mounts dictate filled in, and
checked against them, so that the config and the DaemonSet cannot disagree.
*/}}
{{- define "marina.config" -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- $staging := .Values.staging.hostPath }}
{{- if not (hasKey $config "stagingDir") }}
{{- $_ := set $config "stagingDir" $staging }}
{{- else if ne (toString $config.stagingDir) $staging }}
{{- fail (printf "config.stagingDir (%v) must equal staging.hostPath (%s): containers that Marina starts through the node's Docker engine mount staging by its path on the node" $config.stagingDir $staging) }}
{{- end }}
{{- $data := trimSuffix "/" .Values.data.hostPath }}
{{- if not (hasKey $config "dbPath") }}
{{- $_ := set $config "dbPath" (printf "%s/marina.db" $data) }}
{{- else if not (hasPrefix (printf "%s/" $data) (toString $config.dbPath)) }}
{{- fail (printf "config.dbPath (%v) must lie under data.hostPath (%s), or the job store is lost with the pod" $config.dbPath $data) }}
{{- end }}
{{- if not (hasKey $config "nodeName") }}
{{- $_ := set $config "nodeName" "${NODE_NAME}" }}
{{- end }}
{{- if .Values.auth.enabled }}
{{- if or (hasKey $config "authPassword") (hasKey $config "authPasswordFile") }}
{{- fail "config sets authPassword or authPasswordFile while auth.enabled is true: set the password with auth.password or auth.existingSecret instead" }}
{{- end }}
{{- $_ := set $config "authPasswordFile" (include "marina.authPasswordFile" .) }}
{{- end }}
{{- toYaml $config }}
{{- end }}
