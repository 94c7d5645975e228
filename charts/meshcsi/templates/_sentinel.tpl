{{/*
The flags the hand-off and the sentinel share (docs/contracts.md). Every name
is passed explicitly so fullnameOverride reaches the sentinel.
*/}}
{{- define "meshcsi.sentinel.args" -}}
{{- $fullname := include "meshcsi.fullname" . -}}
- --namespace={{ .Release.Namespace }}
- --release={{ .Release.Name }}
- --driver-name={{ .Values.driverName }}
- --part-of=meshcsi
- --plan-configmap={{ $fullname }}-sentinel-plan
- --job-name={{ $fullname }}-sentinel
- --install-marker={{ $fullname }}-install
- --lease={{ $fullname }}-sentinel
- --removal-guard={{ $fullname }}-removing
- --removal-guard-group={{ include "meshcsi.removalGuard.group" . }}
{{- end -}}

{{/*
The tunable settings, as the sentinel's environment fallbacks: flags for the
hand-off hook (created anew each time), and the kept ConfigMap
<fullname>-sentinel-config for the sentinel Job, whose pod template Kubernetes
never changes: a new timeout reaches it through the ConfigMap.
*/}}
{{- define "meshcsi.sentinel.tunables" -}}
MESHCSI_TIMEOUT: {{ .Values.sentinel.timeout | quote }}
MESHCSI_REPORT_INTERVAL: {{ .Values.sentinel.reportInterval | quote }}
MESHCSI_LOG_LEVEL: {{ .Values.log.level | quote }}
MESHCSI_LOG_FORMAT: {{ .Values.log.format | quote }}
{{- end -}}

{{/*
The sentinel Job's tunables ConfigMap (kept; the sentinel removes it with its
own objects).
*/}}
{{- define "meshcsi.sentinel.config" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "meshcsi.sentinel.name" . }}-config
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "meshcsi.labels" (dict "ctx" . "component" "sentinel") | nindent 4 }}
  annotations:
    {{- include "meshcsi.keep" . | nindent 4 }}
data:
  {{- include "meshcsi.sentinel.tunables" . | nindent 2 }}
{{- end -}}

{{/*
The pod spec fields the hand-off and sentinel pods share. Each runs under its
own ServiceAccount. Call with (dict "ctx" $ "serviceAccount" "<name>").
*/}}
{{- define "meshcsi.sentinel.podSpec" -}}
{{- $ctx := .ctx -}}
serviceAccountName: {{ .serviceAccount }}
restartPolicy: Never
securityContext:
  runAsNonRoot: true
  seccompProfile:
    type: RuntimeDefault
{{- with $ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $ctx.Values.sentinel.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $ctx.Values.sentinel.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $ctx.Values.sentinel.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The env the hand-off and sentinel containers share.
*/}}
{{- define "meshcsi.sentinel.env" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end -}}

{{/*
The labels that select the sentinel Job's pods. The Job sets its selector
itself (manualSelector), so a copy of the live Job (`kubectl get -o yaml |
kubectl replace --force`, the re-launch command of docs/sentinel.md) can be
created again: a generated selector names the old Job's UID.
*/}}
{{- define "meshcsi.sentinel.selectorLabels" -}}
{{ include "meshcsi.selectorLabels" (dict "ctx" . "component" "sentinel") }}
meshcsi.io/driver-name: {{ .Values.driverName }}
{{- end -}}

{{/*
The sentinel Job. The chart creates it suspended at install (kept on
uninstall); the hand-off only un-suspends it, so neither account may create
a Job or a pod. Its pod runs under the sentinel's own ServiceAccount.
*/}}
{{- define "meshcsi.sentinel.job" -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "meshcsi.sentinel.name" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "meshcsi.labels" (dict "ctx" . "component" "sentinel") | nindent 4 }}
  annotations:
    # The sentinel runs in it after Helm is gone and removes it last.
    {{- include "meshcsi.keep" . | nindent 4 }}
spec:
  # Suspended until `helm uninstall`'s hand-off resumes it: no pod runs before.
  suspend: true
  manualSelector: true
  selector:
    matchLabels:
      {{- include "meshcsi.sentinel.selectorLabels" . | nindent 6 }}
  backoffLimit: {{ .Values.sentinel.backoffLimit }}
  # Exit codes 2 (timed out) and 4 (a delete refused by the API server: RBAC
  # or admission) are final: nothing more was deleted, and a retry would not
  # change the answer (re-launch after fixing the cause, docs/sentinel.md).
  # Exit 1 (an error it could not get past) is retried through backoffLimit.
  podFailurePolicy:
    rules:
      - action: FailJob
        onExitCodes:
          containerName: sentinel
          operator: In
          values: [2, 4]
      # Exit code 3 (interrupted by SIGTERM: evicted, deleted, or its Job
      # suspended again by a re-install) and disruptions are not failures:
      # retry without counting them.
      - action: Ignore
        onExitCodes:
          containerName: sentinel
          operator: In
          values: [3]
      - action: Ignore
        onPodConditions:
          - type: DisruptionTarget
  template:
    metadata:
      labels:
        {{- include "meshcsi.sentinel.selectorLabels" . | nindent 8 }}
        app.kubernetes.io/part-of: meshcsi
        # What the Job controller sets on a generated selector's pods, so
        # `-l job-name=...` keeps finding them.
        batch.kubernetes.io/job-name: {{ include "meshcsi.sentinel.name" . }}
        job-name: {{ include "meshcsi.sentinel.name" . }}
      {{- with .Values.sentinel.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "meshcsi.sentinel.podSpec" (dict "ctx" . "serviceAccount" (include "meshcsi.sentinel.name" .)) | nindent 6 }}
      containers:
        - name: sentinel
          image: {{ include "meshcsi.image" (dict "image" .Values.sentinel.image "ctx" .) }}
          imagePullPolicy: {{ .Values.sentinel.image.pullPolicy }}
          args:
            - run
            {{- include "meshcsi.sentinel.args" . | nindent 12 }}
          # Timeout, report interval and logging: edit this ConfigMap to
          # change them (e.g. before a re-launch); the pod template cannot.
          envFrom:
            - configMapRef:
                name: {{ include "meshcsi.sentinel.name" . }}-config
          env:
            {{- include "meshcsi.sentinel.env" . | nindent 12 }}
          {{- with .Values.sentinel.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- include "meshcsi.sentinel.securityContext" . | nindent 12 }}
{{- end -}}

{{/*
The removal guard's own API group (docs/sentinel.md, "The removal guard"): one
per release (<fullname>.<namespace>.meshcsi.io), so two releases never share
the CustomResourceDefinition that one sentinel deletes.
*/}}
{{- define "meshcsi.removalGuard.group" -}}
{{- printf "%s.%s.meshcsi.io" (include "meshcsi.fullname" .) .Release.Namespace -}}
{{- end -}}
