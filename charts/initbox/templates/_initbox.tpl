{{/*
initbox library chart: named templates that emit initbox containers.

Every template takes a dict with "root" (the calling chart's top-level context, `$`) and
returns a YAML list item (`- name: ...`), to be placed under `initContainers:` with nindent:

  initContainers:
    {{- include "initbox.waitForTcp" (dict "root" $ "name" "wait-db" "targets" (list "db:5432")) | nindent 4 }}

Keys every template accepts (all optional unless noted):
  name             container name
  env, envFrom     extra environment (list of EnvVar / EnvFromSource)
  volumeMounts     extra mounts
  resources        replaces the default requests/limits
  securityContext  merged over the restricted defaults (do not loosen it without a reason)
  sidecar          true: a native sidecar (restartPolicy: Always; Kubernetes >= 1.29)
  startupProbe, readinessProbe   for sidecars
*/}}

{{/* The library's defaults merged with the caller's `.Values.initbox`, as YAML. */}}
{{- define "initbox.settings" -}}
{{- $defaults := dict
  "image" (dict "repository" "ghcr.io/initbox/initbox" "tag" "0.1.0" "digest" "" "pullPolicy" "IfNotPresent")
  "resources" (dict "requests" (dict "cpu" "10m" "memory" "16Mi") "limits" (dict "memory" "64Mi"))
  "securityContext" (dict
      "runAsNonRoot" true "runAsUser" 65532 "runAsGroup" 65532
      "readOnlyRootFilesystem" true "allowPrivilegeEscalation" false
      "capabilities" (dict "drop" (list "ALL"))
      "seccompProfile" (dict "type" "RuntimeDefault"))
  "env" (list) -}}
{{- $user := default dict (index .Values "initbox") -}}
{{- toYaml (mergeOverwrite $defaults (deepCopy $user)) -}}
{{- end -}}

{{/* The image reference: repository@digest if a digest is set, else repository:tag. */}}
{{- define "initbox.image" -}}
{{- $img := (include "initbox.settings" . | fromYaml).image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (toString (default "0.1.0" $img.tag)) -}}
{{- end -}}
{{- end -}}

{{/*
initbox.container: one initbox container running APPLET ARGS.
  applet (required), args (list)
*/}}
{{- define "initbox.container" -}}
{{- $root := required "initbox: pass the chart context as \"root\" ($)" .root -}}
{{- $s := include "initbox.settings" $root | fromYaml -}}
{{- $env := concat ($s.env | default list) (.env | default list) -}}
- name: {{ required "initbox.container: name is required" .name | quote }}
  image: {{ include "initbox.image" $root | quote }}
  imagePullPolicy: {{ $s.image.pullPolicy }}
  {{- if .sidecar }}
  restartPolicy: Always
  {{- end }}
  args:
    - {{ required "initbox.container: applet is required" .applet | quote }}
    {{- range .args }}
    - {{ toString . | quote }}
    {{- end }}
  {{- with $env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .envFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .volumeMounts }}
  volumeMounts:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .startupProbe }}
  startupProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  resources:
    {{- toYaml (.resources | default $s.resources) | nindent 4 }}
  securityContext:
    {{- toYaml (mergeOverwrite (deepCopy $s.securityContext) (.securityContext | default dict)) | nindent 4 }}
  terminationMessagePolicy: FallbackToLogsOnError
{{- end -}}

{{/* Call initbox.container with NAME/APPLET/ARGS computed by a wrapper, keeping the caller's other keys. */}}
{{- define "initbox.wrap" -}}
{{- $call := .call -}}
{{- $own := dict "name" ($call.name | default .defaultName) "applet" .applet "args" .args -}}
{{- $_ := set $own "volumeMounts" (concat (.mounts | default list) ($call.volumeMounts | default list)) -}}
{{- $_ := set $own "env" (concat (.env | default list) ($call.env | default list)) -}}
{{- include "initbox.container" (merge $own (omit $call "name" "applet" "args" "volumeMounts" "env")) -}}
{{- end -}}

{{/*
initbox.waitForTcp: wait until TCP ports accept connections.
  targets (required list of HOST:PORT), timeout (default "5m")
*/}}
{{- define "initbox.waitForTcp" -}}
{{- $args := concat (required "initbox.waitForTcp: targets is required" .targets) (list "--timeout" (.timeout | default "5m")) -}}
{{- include "initbox.wrap" (dict "call" . "defaultName" "wait-for-tcp" "applet" "wait-for-tcp" "args" $args) -}}
{{- end -}}

{{/*
initbox.waitForDns: wait until names resolve.
  names (required list), timeout (default "5m")
*/}}
{{- define "initbox.waitForDns" -}}
{{- $args := concat (required "initbox.waitForDns: names is required" .names) (list "--timeout" (.timeout | default "5m")) -}}
{{- include "initbox.wrap" (dict "call" . "defaultName" "wait-for-dns" "applet" "wait-for-dns" "args" $args) -}}
{{- end -}}

{{/*
initbox.waitFor: protocol-level readiness (http(s)://, postgres://, mysql://, redis://, amqp://, ...).
  targets (required list of URLs; put credentials in env, not here), timeout (default "5m")
*/}}
{{- define "initbox.waitFor" -}}
{{- $args := concat (required "initbox.waitFor: targets is required" .targets) (list "--timeout" (.timeout | default "5m")) -}}
{{- include "initbox.wrap" (dict "call" . "defaultName" "wait-for" "applet" "wait-for" "args" $args) -}}
{{- end -}}

{{/*
initbox.runMigrations: apply migrations from a mounted directory, once across all replicas.
  databaseUrlSecret (required: dict name, key) - the URL never appears in the pod spec
  migrationsVolume (required: volume with the .sql files, e.g. a ConfigMap), dir (default /migrations)
  timeout (default "5m"), extraArgs (list)
*/}}
{{- define "initbox.runMigrations" -}}
{{- $secret := required "initbox.runMigrations: databaseUrlSecret (name, key) is required" .databaseUrlSecret -}}
{{- $dir := .dir | default "/migrations" -}}
{{- $env := list (dict "name" "INITBOX_DATABASE_URL" "valueFrom" (dict "secretKeyRef" (dict "name" $secret.name "key" $secret.key))) -}}
{{- $mounts := list (dict "name" (required "initbox.runMigrations: migrationsVolume is required" .migrationsVolume) "mountPath" $dir "readOnly" true) -}}
{{- $args := concat (list "--dir" $dir "--timeout" (.timeout | default "5m")) (.extraArgs | default list) -}}
{{- include "initbox.wrap" (dict "call" . "defaultName" "run-migrations" "applet" "run-migrations" "args" $args "env" $env "mounts" $mounts) -}}
{{- end -}}

{{/*
initbox.fetchSecret: fetch secrets into files on a shared volume (mode 0400, owned by 65532).
  refs (required list of NAME=REF, e.g. "db-password=ref+vault://secret/app#/password")
  volume (required: emptyDir shared with the app, medium Memory recommended), dir (default /secrets)
  extraArgs (list), env (Vault/AWS settings, e.g. INITBOX_VAULT_ADDR)
*/}}
{{- define "initbox.fetchSecret" -}}
{{- $dir := .dir | default "/secrets" -}}
{{- $mounts := list (dict "name" (required "initbox.fetchSecret: volume is required" .volume) "mountPath" $dir) -}}
{{- $args := concat (required "initbox.fetchSecret: refs is required" .refs) (list "--dir" $dir) (.extraArgs | default list) -}}
{{- include "initbox.wrap" (dict "call" . "defaultName" "fetch-secret" "applet" "fetch-secret" "args" $args "mounts" $mounts) -}}
{{- end -}}

{{/*
initbox.renderConfig: render configuration templates into a shared volume.
  templatesVolume (required: where the templates are, mounted read-only at /templates)
  outputVolume (required: emptyDir shared with the app, mounted at /config)
  args (required: render-config arguments, e.g. (list "/templates/app.conf.j2" "/config/app.conf"))
*/}}
{{- define "initbox.renderConfig" -}}
{{- $mounts := list
    (dict "name" (required "initbox.renderConfig: templatesVolume is required" .templatesVolume) "mountPath" "/templates" "readOnly" true)
    (dict "name" (required "initbox.renderConfig: outputVolume is required" .outputVolume) "mountPath" "/config") -}}
{{- include "initbox.wrap" (dict "call" . "defaultName" "render-config" "applet" "render-config" "args" (required "initbox.renderConfig: args is required" .args) "mounts" $mounts) -}}
{{- end -}}

{{/*
initbox.networkCheck: verify the pod's network (DNS, TCP, HTTP, TLS) before the app starts.
  checks (required list, e.g. "dns:db" "tcp:db:5432" "https://api.example.com/healthz")
*/}}
{{- define "initbox.networkCheck" -}}
{{- $args := concat (required "initbox.networkCheck: checks is required" .checks) (.extraArgs | default list) -}}
{{- include "initbox.wrap" (dict "call" . "defaultName" "network-check" "applet" "network-check" "args" $args) -}}
{{- end -}}

{{/*
initbox.notify: send a notification (best effort by default: never blocks the pod).
  urlsSecret (dict name, key: service URLs with tokens, from a Secret) or urls (list, no secrets)
  message (required), title, extraArgs (list)
*/}}
{{- define "initbox.notify" -}}
{{- $env := list -}}
{{- $args := list "--message" (required "initbox.notify: message is required" .message) -}}
{{- with .title }}{{ $args = concat $args (list "--title" .) }}{{ end -}}
{{- with .urlsSecret -}}
{{- $env = list (dict "name" "INITBOX_NOTIFY_URLS" "valueFrom" (dict "secretKeyRef" (dict "name" .name "key" .key))) -}}
{{- end -}}
{{- if and (not .urlsSecret) (not .urls) -}}
{{- fail "initbox.notify: urls or urlsSecret is required" -}}
{{- end -}}
{{- $args = concat (.urls | default list) $args (.extraArgs | default list) -}}
{{- $pod := list
    (dict "name" "POD_NAME" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.name")))
    (dict "name" "POD_NAMESPACE" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.namespace"))) -}}
{{- include "initbox.wrap" (dict "call" . "defaultName" "notify" "applet" "notify" "args" $args "env" (concat $pod $env)) -}}
{{- end -}}

{{/*
initbox.copySelf: copy the initbox binary into a shared emptyDir, so the app container can use
it as its entrypoint (e.g. `/initbox-bin/initbox wait-for-tcp db:5432 -- /app/server`).
  volume (required), dir (default /initbox-bin), links (default false)
*/}}
{{- define "initbox.copySelf" -}}
{{- $dir := .dir | default "/initbox-bin" -}}
{{- $args := list $dir -}}
{{- if .links }}{{ $args = prepend $args "--links" }}{{ end -}}
{{- $mounts := list (dict "name" (required "initbox.copySelf: volume is required" .volume) "mountPath" $dir) -}}
{{- include "initbox.wrap" (dict "call" . "defaultName" "copy-self" "applet" "copy-self" "args" $args "mounts" $mounts) -}}
{{- end -}}

{{/*
initbox.run: several steps in one init container from a steps file (one container start).
  stepsConfigMap (required: ConfigMap with key steps.yaml), plus volumeMounts the steps need
*/}}
{{- define "initbox.run" -}}
{{- $mounts := list (dict "name" "initbox-steps" "mountPath" "/etc/initbox" "readOnly" true) -}}
{{- include "initbox.wrap" (dict "call" . "defaultName" "initbox-run" "applet" "run" "args" (list "-f" "/etc/initbox/steps.yaml") "mounts" $mounts) -}}
{{- end -}}

{{/* initbox.runVolume: the volume initbox.run mounts. stepsConfigMap (required). */}}
{{- define "initbox.runVolume" -}}
- name: initbox-steps
  configMap:
    name: {{ required "initbox.runVolume: stepsConfigMap is required" .stepsConfigMap | quote }}
{{- end -}}

{{/*
initbox.startupProbe: an exec startupProbe for a native sidecar of another image (a database
proxy, a mesh agent) using the initbox binary that initbox.copySelf put on a shared volume:
later init containers start only once the sidecar accepts connections.
  target (required HOST:PORT), dir (default /initbox-bin)
*/}}
{{- define "initbox.startupProbe" -}}
exec:
  command:
    - {{ printf "%s/initbox" (.dir | default "/initbox-bin") | quote }}
    - wait-for-tcp
    - --once
    - {{ required "initbox.startupProbe: target is required" .target | quote }}
periodSeconds: 1
failureThreshold: 120
{{- end -}}

{{/*
initbox.initContainers: a list of containers from values, e.g.
  initContainers:
    {{- include "initbox.initContainers" (dict "root" $ "containers" .Values.initSteps) | nindent 4 }}
with each item {name, applet, args, env, volumeMounts, resources, securityContext, sidecar}.
*/}}
{{- define "initbox.initContainers" -}}
{{- $root := .root -}}
{{- range .containers }}
{{ include "initbox.container" (merge (dict "root" $root) .) }}
{{- end -}}
{{- end -}}

{{/*
initbox.waitForKubernetesRbac: the Role and RoleBinding a `wait-for k8s://...` init container
needs (get, list, watch on each resource; without watch it polls), for the pod's service account.
The same rules as `initbox wait-for --print-rbac TARGETS`.
  resources (required list of PLURAL[.GROUP] as RBAC writes them, e.g. "jobs.batch",
             "deployments.apps", "endpointslices.discovery.k8s.io" for a Service, "pods")
  serviceAccount (required), name (default "<release>-initbox-wait-for"),
  namespace (default the release namespace)
*/}}
{{- define "initbox.waitForKubernetesRbac" -}}
{{- $root := required "initbox: pass the chart context as \"root\" ($)" .root -}}
{{- $name := .name | default (printf "%s-initbox-wait-for" $root.Release.Name) -}}
{{- $ns := .namespace | default $root.Release.Namespace -}}
{{- $groups := dict -}}
{{- range (required "initbox.waitForKubernetesRbac: resources is required" .resources) -}}
{{- $parts := splitn "." 2 . -}}
{{- $group := $parts._1 | default "" -}}
{{- $_ := set $groups $group (append (get $groups $group | default list) $parts._0) -}}
{{- end -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name | quote }}
  namespace: {{ $ns | quote }}
rules:
{{- range $group := keys $groups | sortAlpha }}
  - apiGroups: [{{ $group | quote }}]
    resources: [{{ range $i, $r := get $groups $group | uniq | sortAlpha }}{{ if $i }}, {{ end }}{{ $r | quote }}{{ end }}]
    verbs: ["get", "list", "watch"]
{{- end }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name | quote }}
  namespace: {{ $ns | quote }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name | quote }}
subjects:
  - kind: ServiceAccount
    name: {{ required "initbox.waitForKubernetesRbac: serviceAccount is required" .serviceAccount | quote }}
    namespace: {{ $ns | quote }}
{{- end -}}
