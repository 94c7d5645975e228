{{/*
Relabelings shared by the PodMonitor and the ServiceMonitor: a stable job
label (the alert rules select it) and the node the driver runs on.
*/}}
{{- define "meshcsi.monitoring.relabelings" -}}
- action: replace
  targetLabel: job
  replacement: {{ .Values.metrics.jobName }}
- action: replace
  sourceLabels: [__meta_kubernetes_pod_node_name]
  targetLabel: node
{{- end -}}
