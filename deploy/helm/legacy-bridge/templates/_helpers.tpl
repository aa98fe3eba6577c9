{{/* Names and labels */}}
{{- define "legacy-bridge.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "legacy-bridge.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The pods that run the proxy: the gateway's own, or the client workload's. */}}
{{- define "legacy-bridge.selector" -}}
{{- if eq .Values.mode "sidecar" -}}
app.kubernetes.io/name: {{ .Values.sidecar.workload.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- else -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}
{{- end -}}

{{- define "legacy-bridge.replicas" -}}
{{- if eq .Values.mode "sidecar" -}}{{ .Values.sidecar.workload.replicas }}{{- else -}}{{ .Values.gateway.replicas }}{{- end -}}
{{- end -}}

{{/* Refuse values that would deploy something broken, naming the key and the fix. */}}
{{- define "legacy-bridge.check" -}}
{{- if not (has .Values.mode (list "gateway" "sidecar")) -}}
{{- fail (printf "mode: %q is not a mode; use gateway or sidecar" .Values.mode) -}}
{{- end -}}
{{- if not .Values.upstream.url -}}
{{- fail "upstream.url: set the GraphQL upstream's base URL, e.g. https://api.example.com" -}}
{{- end -}}
{{- if not .Values.upstream.apiKeySecret.name -}}
{{- fail "upstream.apiKeySecret.name: name the existing Secret that holds the company API key" -}}
{{- end -}}
{{- $tokens := 0 -}}
{{- range (list .Values.tokens.existingConfigMap .Values.tokens.existingSecret .Values.tokens.inline) -}}{{- if . -}}{{- $tokens = add1 $tokens -}}{{- end -}}{{- end -}}
{{- if ne $tokens 1 -}}
{{- fail "tokens: set exactly one of existingConfigMap, existingSecret or inline (the token table)" -}}
{{- end -}}
{{- if and .Values.store.urlSecret.name .Values.store.bundled.enabled -}}
{{- fail "store: set store.urlSecret.name (external PostgreSQL) or store.bundled.enabled, not both" -}}
{{- end -}}
{{- if and .Values.redis.urlSecret.name .Values.redis.bundled.enabled -}}
{{- fail "redis: set redis.urlSecret.name (external Redis) or redis.bundled.enabled, not both" -}}
{{- end -}}
{{- if and (gt (int (include "legacy-bridge.replicas" .)) 1) (not .Values.store.urlSecret.name) (not .Values.store.bundled.enabled) -}}
{{- fail "store: more than one replica needs a shared store; set store.urlSecret.name (PostgreSQL) or store.bundled.enabled=true for a trial" -}}
{{- end -}}
{{- if and (eq .Values.mode "sidecar") (not .Values.sidecar.workload.containers) -}}
{{- fail "sidecar.workload.containers: give the client's containers, as in its own Deployment" -}}
{{- end -}}
{{- end -}}

{{/* Seconds a stopping pod may take: requests in flight, shadow drain, flush (and the client's). */}}
{{- define "legacy-bridge.grace" -}}
{{- $s := .Values.shutdown -}}
{{- $own := add (int $s.timeoutSeconds) (div (int $s.timeoutSeconds) 2) (int $s.flushSeconds) -}}
{{- if eq .Values.mode "sidecar" -}}
{{- add $own (int .Values.sidecar.workload.terminationGracePeriodSeconds) -}}
{{- else -}}
{{- add $own 5 -}}
{{- end -}}
{{- end -}}

{{- define "legacy-bridge.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The proxy's container: the same in a gateway pod and as a client's sidecar. */}}
{{- define "legacy-bridge.container" -}}
- name: legacy-bridge
  image: {{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if eq .Values.mode "sidecar" }}
  restartPolicy: Always  # a native sidecar: up before the client, stopped after it
  {{- end }}
  ports:
    - {name: bridge-http, containerPort: 8080, protocol: TCP}
  env:
    - {name: BRIDGE_HOST, value: "0.0.0.0"}
    - {name: BRIDGE_PORT, value: "8080"}
    - {name: BRIDGE_UPSTREAM_URL, value: {{ .Values.upstream.url | quote }}}
    - {name: BRIDGE_UPSTREAM_API_KEY_FILE, value: /var/run/secrets/legacy-bridge/upstream/api-key}
    - {name: BRIDGE_TOKENS_FILE, value: /etc/legacy-bridge/tokens/tokens.toml}
    - {name: BRIDGE_SHUTDOWN_TIMEOUT, value: {{ .Values.shutdown.timeoutSeconds | quote }}}
    {{- if .Values.adminTokenSecret.name }}
    - {name: BRIDGE_ADMIN_TOKEN_FILE, value: /var/run/secrets/legacy-bridge/admin/admin-token}
    {{- end }}
    {{- if .Values.upstream.caBundleSecret.name }}
    - {name: BRIDGE_UPSTREAM_CA_FILE, value: /var/run/secrets/legacy-bridge/ca/ca.crt}
    {{- end }}
    {{- if .Values.store.urlSecret.name }}
    - name: BRIDGE_STORE_URL
      valueFrom: {secretKeyRef: {name: {{ .Values.store.urlSecret.name | quote }}, key: {{ .Values.store.urlSecret.key | quote }}}}
    {{- else if .Values.store.bundled.enabled }}
    - name: BRIDGE_STORE_URL
      valueFrom: {secretKeyRef: {name: {{ printf "%s-postgresql" (include "legacy-bridge.fullname" .) | quote }}, key: store-url}}
    {{- else }}
    - {name: BRIDGE_STORE_URL, value: "sqlite:////app/data/bridge.sqlite3"}
    {{- end }}
    {{- if .Values.redis.urlSecret.name }}
    {{- range (list "BRIDGE_CURSOR_CACHE" "BRIDGE_RATE_LIMIT_STORAGE") }}
    - name: {{ . }}
      valueFrom: {secretKeyRef: {name: {{ $.Values.redis.urlSecret.name | quote }}, key: {{ $.Values.redis.urlSecret.key | quote }}}}
    {{- end }}
    {{- else if .Values.redis.bundled.enabled }}
    - {name: BRIDGE_CURSOR_CACHE, value: {{ printf "redis://%s-redis:6379/0" (include "legacy-bridge.fullname" .) | quote }}}
    - {name: BRIDGE_RATE_LIMIT_STORAGE, value: {{ printf "redis://%s-redis:6379/1" (include "legacy-bridge.fullname" .) | quote }}}
    {{- end }}
    {{- range $name, $value := .Values.settings }}
    - {name: {{ $name }}, value: {{ $value | quote }}}
    {{- end }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  startupProbe:  # the mapping tables are loaded and checked: the client may start
    httpGet: {path: /healthz, port: bridge-http}
    periodSeconds: 1
    failureThreshold: 60
  readinessProbe:
    httpGet: {path: /readyz, port: bridge-http}
    periodSeconds: 5
    timeoutSeconds: 3
  livenessProbe:
    httpGet: {path: /healthz, port: bridge-http}
    periodSeconds: 10
    failureThreshold: 3
  {{- if ne .Values.mode "sidecar" }}
  lifecycle:  # let the Service stop routing here before the proxy stops accepting
    preStop:
      exec: {command: ["sleep", "5"]}
  {{- end }}
  resources: {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    runAsNonRoot: true
    runAsUser: 10001
    capabilities: {drop: [ALL]}
    seccompProfile: {type: RuntimeDefault}
  volumeMounts:
    - {name: legacy-bridge-upstream, mountPath: /var/run/secrets/legacy-bridge/upstream, readOnly: true}
    - {name: legacy-bridge-tokens, mountPath: /etc/legacy-bridge/tokens, readOnly: true}
    {{- if .Values.adminTokenSecret.name }}
    - {name: legacy-bridge-admin, mountPath: /var/run/secrets/legacy-bridge/admin, readOnly: true}
    {{- end }}
    {{- if .Values.upstream.caBundleSecret.name }}
    - {name: legacy-bridge-ca, mountPath: /var/run/secrets/legacy-bridge/ca, readOnly: true}
    {{- end }}
    - {name: legacy-bridge-tmp, mountPath: /tmp}  # metrics of several workers, temp files
    - {name: legacy-bridge-data, mountPath: /app/data}
{{- end -}}

{{/* The volumes the proxy's container mounts. `optional: false` is the default, written
out because podman's kube play (4.3) fails without it. */}}
{{- define "legacy-bridge.volumes" -}}
- name: legacy-bridge-upstream
  secret:
    secretName: {{ .Values.upstream.apiKeySecret.name | quote }}
    items: [{key: {{ .Values.upstream.apiKeySecret.key | quote }}, path: api-key}]
    optional: false
- name: legacy-bridge-tokens
  {{- if .Values.tokens.existingSecret }}
  secret:
    secretName: {{ .Values.tokens.existingSecret | quote }}
    items: [{key: {{ .Values.tokens.key | quote }}, path: tokens.toml}]
    optional: false
  {{- else }}
  configMap:
    name: {{ .Values.tokens.existingConfigMap | default (printf "%s-tokens" (include "legacy-bridge.fullname" .)) | quote }}
    items: [{key: {{ .Values.tokens.key | quote }}, path: tokens.toml}]
    optional: false
  {{- end }}
{{- if .Values.adminTokenSecret.name }}
- name: legacy-bridge-admin
  secret:
    secretName: {{ .Values.adminTokenSecret.name | quote }}
    items: [{key: {{ .Values.adminTokenSecret.key | quote }}, path: admin-token}]
    optional: false
{{- end }}
{{- if .Values.upstream.caBundleSecret.name }}
- name: legacy-bridge-ca
  secret:
    secretName: {{ .Values.upstream.caBundleSecret.name | quote }}
    items: [{key: {{ .Values.upstream.caBundleSecret.key | quote }}, path: ca.crt}]
    optional: false
{{- end }}
- name: legacy-bridge-tmp
  emptyDir: {medium: Memory, sizeLimit: 64Mi}
- name: legacy-bridge-data
  emptyDir: {sizeLimit: 1Gi}
{{- end -}}
