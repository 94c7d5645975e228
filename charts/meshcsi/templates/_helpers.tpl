{{/*
The prefix of every object name: fullnameOverride or the release name,
at most 40 characters so "<fullname>-sentinel-plan" and Job names fit.
*/}}
{{- define "meshcsi.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/*
chart label value: name-version.
*/}}
{{- define "meshcsi.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels that select one component's pods. Call with
(dict "ctx" $ "component" "driver").
*/}}
{{- define "meshcsi.selectorLabels" -}}
app.kubernetes.io/name: meshcsi
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
The labels every object carries (docs/contracts.md): the sentinel finds the
release's objects by them. Call with (dict "ctx" $ "component" "driver").
*/}}
{{- define "meshcsi.labels" -}}
{{ include "meshcsi.selectorLabels" . }}
app.kubernetes.io/part-of: meshcsi
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
helm.sh/chart: {{ include "meshcsi.chart" .ctx }}
meshcsi.io/driver-name: {{ .ctx.Values.driverName }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The labels of the driver's pod template: those of every object except
helm.sh/chart, so a chart-only upgrade does not restart every driver pod.
Call with (dict "ctx" $ "component" "driver").
*/}}
{{- define "meshcsi.podLabels" -}}
{{ include "meshcsi.selectorLabels" . }}
app.kubernetes.io/part-of: meshcsi
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
meshcsi.io/driver-name: {{ .ctx.Values.driverName }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The sources as JSON: name -> {path, socket, namespaces, namespaceSelector}.
A plain string value is the path (the chart's first values shape). The
driver's flags and the pod admission policy are both rendered from this, so
they cannot disagree. Use: include "meshcsi.sources" . | fromJson
*/}}
{{- define "meshcsi.sources" -}}
{{- $out := dict -}}
{{- range $name, $s := .Values.sources -}}
{{- if kindIs "invalid" $s -}}
{{- /* null: a source of the chart's defaults removed, as `helm upgrade --reuse-values` keeps it */ -}}
{{- else if kindIs "string" $s -}}
{{- $_ := set $out $name (dict "path" $s "socket" "" "namespaces" (list) "matchLabels" (dict)) -}}
{{- else -}}
{{- $sel := default (dict) $s.namespaceSelector -}}
{{- $_ := set $out $name (dict "path" $s.path "socket" (default "" $s.socket) "namespaces" (default (list) $s.namespaces) "matchLabels" (default (dict) $sel.matchLabels)) -}}
{{- end -}}
{{- end -}}
{{- if not $out -}}
{{- fail "sources: at least one source (a name and a path) is required" -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
Marks an object that pods (or the sentinel) still need after `helm uninstall`:
Helm leaves it, and the sentinel removes it once no pod uses the driver.
*/}}
{{- define "meshcsi.keep" -}}
helm.sh/resource-policy: keep
{{- end -}}

{{/*
An image reference from {repository, tag, digest}, prefixed with
global.imageRegistry when that is set. Call with
(dict "image" .Values.driver.image "ctx" $).
*/}}
{{- define "meshcsi.image" -}}
{{- $repo := .image.repository -}}
{{- $global := default (dict) .ctx.Values.global -}}
{{- with $global.imageRegistry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "meshcsi.driver.name" -}}
{{- printf "%s-driver" (include "meshcsi.fullname" .) -}}
{{- end -}}

{{- define "meshcsi.sentinel.name" -}}
{{- printf "%s-sentinel" (include "meshcsi.fullname" .) -}}
{{- end -}}

{{- define "meshcsi.handoff.name" -}}
{{- printf "%s-handoff" (include "meshcsi.fullname" .) -}}
{{- end -}}

{{- define "meshcsi.upgrade.name" -}}
{{- printf "%s-upgrade" (include "meshcsi.fullname" .) -}}
{{- end -}}

{{/*
The default source: defaultSource, or the only source when there is one.
Fails when defaultSource names no configured source.
*/}}
{{- define "meshcsi.defaultSource" -}}
{{- $sources := include "meshcsi.sources" . | fromJson -}}
{{- if .Values.defaultSource -}}
{{- if not (hasKey $sources .Values.defaultSource) -}}
{{- fail (printf "defaultSource %q is not a key of sources" .Values.defaultSource) -}}
{{- end -}}
{{- .Values.defaultSource -}}
{{- else if eq (len $sources) 1 -}}
{{- keys $sources | first -}}
{{- end -}}
{{- end -}}

{{/*
The plugin directory on the node, which holds the driver's CSI socket.
*/}}
{{- define "meshcsi.pluginDir" -}}
{{- printf "%s/plugins/%s" (trimSuffix "/" .Values.kubeletDir) .Values.driverName -}}
{{- end -}}

{{/*
SELinux options of the driver container, if any.
*/}}
{{- define "meshcsi.driver.seLinuxOptions" -}}
{{- if .Values.driver.seLinuxOptions -}}
{{- toYaml .Values.driver.seLinuxOptions -}}
{{- else if .Values.openshift.enabled -}}
{{- toYaml .Values.openshift.seLinuxOptions -}}
{{- end -}}
{{- end -}}

{{/*
The restricted security context of the hand-off and sentinel containers.
OpenShift assigns the UID from the namespace's range, so it is left out there.
*/}}
{{- define "meshcsi.sentinel.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
{{- if not .Values.openshift.enabled }}
runAsUser: 65532
runAsGroup: 65532
{{- end }}
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
