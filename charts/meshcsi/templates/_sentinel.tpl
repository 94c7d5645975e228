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
- --timeout={{ .Values.sentinel.timeout }}
- --report-interval={{ .Values.sentinel.reportInterval }}
- --log-level={{ .Values.log.level }}
- --log-format={{ .Values.log.format }}
{{- end -}}

{{/*
The pod spec fields the hand-off and sentinel pods share.
*/}}
{{- define "meshcsi.sentinel.podSpec" -}}
serviceAccountName: {{ include "meshcsi.sentinel.name" . }}
restartPolicy: Never
securityContext:
  runAsNonRoot: true
  seccompProfile:
    type: RuntimeDefault
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.sentinel.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.sentinel.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.sentinel.affinity }}
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
The sentinel Job. The hand-off creates it from this manifest (mounted from the
hook ConfigMap) as a plain object, so it outlives `helm uninstall`.
*/}}
{{- define "meshcsi.sentinel.job" -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "meshcsi.sentinel.name" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "meshcsi.labels" (dict "ctx" . "component" "sentinel") | nindent 4 }}
spec:
  backoffLimit: {{ .Values.sentinel.backoffLimit }}
  # Exit code 2 (timed out, deleted nothing more) is final; exit 1 (an API
  # error it could not get past, e.g. an unreachable API server at start-up)
  # is retried through backoffLimit (docs/sentinel.md).
  podFailurePolicy:
    rules:
      - action: FailJob
        onExitCodes:
          containerName: sentinel
          operator: In
          values: [2]
      # Exit code 3 (interrupted by SIGTERM: evicted or deleted) and
      # disruptions are not failures: retry without counting them.
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
        {{- include "meshcsi.labels" (dict "ctx" . "component" "sentinel") | nindent 8 }}
      {{- with .Values.sentinel.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "meshcsi.sentinel.podSpec" . | nindent 6 }}
      containers:
        - name: sentinel
          image: {{ include "meshcsi.image" (dict "image" .Values.sentinel.image "ctx" .) }}
          imagePullPolicy: {{ .Values.sentinel.image.pullPolicy }}
          args:
            - run
            {{- include "meshcsi.sentinel.args" . | nindent 12 }}
          env:
            {{- include "meshcsi.sentinel.env" . | nindent 12 }}
          {{- with .Values.sentinel.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- include "meshcsi.sentinel.securityContext" . | nindent 12 }}
{{- end -}}
