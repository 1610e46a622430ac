{{- define "dartts.fullname" -}}
{{- printf "%s-dartts" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dartts.labels" -}}
app.kubernetes.io/name: dartts
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
dartts.gov/instance: {{ .Values.instance }}
{{- end -}}

{{- define "dartts.selector" -}}
app.kubernetes.io/name: dartts
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dartts.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "dartts.claim" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "dartts.fullname" .)) -}}
{{- end -}}

{{/* A secret-backed env var, left out when the reference has no name. */}}
{{- define "dartts.secretEnv" -}}
{{- if .ref.name }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.name }}
      key: {{ .ref.key }}
{{- end }}
{{- end -}}

{{/* Environment shared by the API and the scheduled jobs: settings, then secrets. */}}
{{- define "dartts.env" -}}
- name: DARTTS_INSTANCE
  value: {{ .Values.instance | quote }}
- name: DARTTS_POLICY_DIR
  value: {{ .Values.policies.mountPath | quote }}
{{- if .Values.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.otlpEndpoint | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "dartts-%s" .Values.instance | quote }}
{{- end }}
{{- include "dartts.secretEnv" (dict "env" "DARTTS_DATABASE_URL" "ref" .Values.secrets.database) }}
{{- include "dartts.secretEnv" (dict "env" "DARTTS_REDIS_URL" "ref" .Values.secrets.redis) }}
{{- include "dartts.secretEnv" (dict "env" "DARTTS_OIDC_CLIENT_SECRET" "ref" .Values.secrets.oidcClientSecret) }}
{{- include "dartts.secretEnv" (dict "env" "DARTTS_PSEUDONYM_KEY" "ref" .Values.secrets.pseudonymKey) }}
{{- end -}}

{{- define "dartts.volumeMounts" -}}
- name: data
  mountPath: {{ .Values.settings.DARTTS_DATA_DIR | default "/var/lib/dartts" }}
- name: policies
  mountPath: {{ .Values.policies.mountPath }}
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.secrets.serverTls.name }}
- name: server-tls
  mountPath: /etc/dartts/tls
  readOnly: true
{{- end }}
{{- if .Values.secrets.clientCa.name }}
- name: client-ca
  mountPath: /etc/dartts/client-ca
  readOnly: true
{{- end }}
{{- if .Values.secrets.clientCrl.name }}
- name: client-crl
  mountPath: /etc/dartts/client-crl
  readOnly: true
{{- end }}
{{- end -}}

{{- define "dartts.volumes" -}}
- name: data
  persistentVolumeClaim:
    claimName: {{ include "dartts.claim" . }}
- name: policies
  configMap:
    name: {{ include "dartts.fullname" . }}-policies
- name: tmp
  emptyDir: {}
{{- if .Values.secrets.serverTls.name }}
- name: server-tls
  secret:
    secretName: {{ .Values.secrets.serverTls.name }}
{{- end }}
{{- if .Values.secrets.clientCa.name }}
- name: client-ca
  secret:
    secretName: {{ .Values.secrets.clientCa.name }}
    items:
      - key: {{ .Values.secrets.clientCa.key }}
        path: ca.crt
{{- end }}
{{- if .Values.secrets.clientCrl.name }}
{{- /* A whole-volume mount (no subPath): the kubelet swaps in an updated Secret. */}}
- name: client-crl
  secret:
    secretName: {{ .Values.secrets.clientCrl.name }}
    items:
      - key: {{ .Values.secrets.clientCrl.key }}
        path: crl.pem
{{- end }}
{{- end -}}

{{/* Pod-level settings every workload shares: no API token, non-root. */}}
{{- define "dartts.podSpecCommon" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{- define "dartts.egressTo" -}}
{{- if .cidr }}
- to:
    - ipBlock:
        cidr: {{ .cidr }}
  ports:
    - protocol: TCP
      port: {{ .port }}
{{- end }}
{{- end -}}
{{- define "dartts.egressDns" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ . }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end -}}

{{- define "dartts.cronJob" -}}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "dartts.fullname" .root }}-{{ .name }}
  labels:
    {{- include "dartts.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .name }}
spec:
  schedule: {{ .schedule | quote }}
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 3
  jobTemplate:
    spec:
      backoffLimit: 1
      template:
        metadata:
          labels:
            {{- include "dartts.selector" .root | nindent 12 }}
            app.kubernetes.io/component: {{ .name }}
        spec:
          {{- include "dartts.podSpecCommon" .root | nindent 10 }}
          restartPolicy: Never
          containers:
            - name: {{ .name }}
              image: {{ include "dartts.image" .root }}
              imagePullPolicy: {{ .root.Values.image.pullPolicy }}
              args: {{ toJson .args }}
              envFrom:
                - configMapRef:
                    name: {{ include "dartts.fullname" .root }}-settings
              env:
                {{- include "dartts.env" .root | nindent 16 }}
              resources:
                {{- toYaml .root.Values.jobResources | nindent 16 }}
              securityContext:
                {{- toYaml .root.Values.securityContext | nindent 16 }}
              volumeMounts:
                {{- include "dartts.volumeMounts" .root | nindent 16 }}
          volumes:
            {{- include "dartts.volumes" .root | nindent 12 }}
{{- end -}}
