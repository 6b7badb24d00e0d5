{{/*
Names, labels, images and the pieces every workload shares. The hardening
settings live here, not in values: a values file cannot weaken them.
*/}}

{{- define "crowsnest.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "crowsnest.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* crowsnest.component: "<fullname>-<component>", within 63 characters. */}}
{{- define "crowsnest.component" -}}
{{- printf "%s-%s" (include "crowsnest.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "crowsnest.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crowsnest.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "crowsnest.labels" -}}
{{ include "crowsnest.selectorLabels" . }}
app.kubernetes.io/part-of: crowsnest
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* crowsnest.image: repository@digest when a digest is set, else repository:tag. */}}
{{- define "crowsnest.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "crowsnest.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
crowsnest.podSecurityContext: dict root, optional runAsUser and
supplementalGroups.
*/}}
{{- define "crowsnest.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ default .root.Values.podSecurity.runAsUser (get . "runAsUser") }}
  runAsGroup: {{ default .root.Values.podSecurity.runAsGroup (get . "runAsGroup") }}
  fsGroup: {{ default .root.Values.podSecurity.fsGroup (get . "fsGroup") }}
  {{- with get . "supplementalGroups" }}
  supplementalGroups: {{ toJson . }}
  {{- end }}
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{- define "crowsnest.containerSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  privileged: false
  capabilities:
    drop: [ALL]
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* crowsnest.natsURL: the in-chart client Service, or nats.url. */}}
{{- define "crowsnest.natsURL" -}}
{{- if .Values.nats.enabled -}}
{{- $scheme := ternary "tls" "nats" (ne .Values.nats.tls.existingSecret "") -}}
{{- printf "%s://%s.%s.svc:4222" $scheme (include "crowsnest.component" (dict "root" . "component" "nats")) .Release.Namespace -}}
{{- else -}}
{{- required "nats.url is required when nats.enabled is false (the external NATS cluster's client URL)" .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{/*
crowsnest.natsIdentity: a component's NATS identity with nats.auth on, as
YAML: name (the nkey user, its seed file stem and inbox), secret (the
Secret holding <name>.nk), value (that Secret's values key, for errors),
collectorID (a collector's fixed id, if any); empty with auth off. dict
root, component. The names are the ones `crowsnest nats-auth` writes
(docs/bus-security.md).
*/}}
{{- define "crowsnest.natsIdentity" -}}
{{- $a := .root.Values.nats.auth -}}
{{- if $a.enabled -}}
{{- $c := .component -}}
{{- if eq $c "nats-setup" -}}
{{- toYaml (dict "name" "admin" "secret" $a.seeds.admin "value" "nats.auth.seeds.admin") -}}
{{- else if eq $c "processor" -}}
{{- toYaml (dict "name" "processor" "secret" $a.seeds.processor "value" "nats.auth.seeds.processor") -}}
{{- else if eq $c "node-collector" -}}
{{- toYaml (dict "name" "node-collectors" "secret" $a.seeds.nodeCollectors "value" "nats.auth.seeds.nodeCollectors") -}}
{{- else if eq $c "audit-webhook" -}}
{{- toYaml (dict "name" (printf "collector-%s" $a.webhookCollectorId) "secret" $a.seeds.webhook "value" "nats.auth.seeds.webhook" "collectorID" $a.webhookCollectorId) -}}
{{- else if eq $c "sidecar-example" -}}
{{- toYaml (dict "name" (printf "collector-%s" $a.sidecarCollectorId) "secret" $a.seeds.sidecar "value" "nats.auth.seeds.sidecar" "collectorID" $a.sidecarCollectorId) -}}
{{- else if hasPrefix "sink-" $c -}}
{{- $sink := trimPrefix "sink-" $c -}}
{{- toYaml (dict "name" $c "secret" (get (default dict $a.seeds.sinks) $sink) "value" (printf "nats.auth.seeds.sinks.%s" $sink)) -}}
{{- else -}}
{{- fail (printf "crowsnest.natsIdentity: no NATS identity for component %q" $c) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
crowsnest.baseConfig: the shared sections of a component's crowsnest.yaml
(log, telemetry, nats, topology) as YAML; dict root, component. With
nats.auth on, the component connects as its own identity (nkey_file,
inbox_prefix), verifies the topology instead of creating it
(ensure_topology: false; the nats-setup hook Job creates it as the admin),
and a collector with a fixed identity publishes under that id. Files are
mounted under /var/run/secrets/crowsnest.
*/}}
{{- define "crowsnest.baseConfig" -}}
{{- $root := .root -}}
{{- $nats := dict "url" (include "crowsnest.natsURL" $root) -}}
{{- $id := include "crowsnest.natsIdentity" . | fromYaml -}}
{{- if (get $id "name") -}}
{{- $_ := required (printf "%s is required when nats.auth.enabled: the Secret holding %s.nk (crowsnest nats-auth --seeds DIR writes it; see the chart README)" (get $id "value") (get $id "name")) (get $id "secret") -}}
{{- $_ := set $nats "nkey_file" (printf "/var/run/secrets/crowsnest/nats/%s.nk" (get $id "name")) -}}
{{- $_ := set $nats "inbox_prefix" (printf "_INBOX_%s" (get $id "name")) -}}
{{- end -}}
{{- if $root.Values.nats.tls.existingSecret -}}
{{- $tls := dict "ca_file" "/var/run/secrets/crowsnest/nats-tls/ca.crt" -}}
{{- if $root.Values.nats.tls.clientCert -}}
{{- $_ := set $tls "cert_file" "/var/run/secrets/crowsnest/nats-tls/tls.crt" -}}
{{- $_ := set $tls "key_file" "/var/run/secrets/crowsnest/nats-tls/tls.key" -}}
{{- end -}}
{{- $_ := set $nats "tls" $tls -}}
{{- end -}}
{{- $cfg := dict "log" (deepCopy $root.Values.log) "telemetry" (dict "listen" (printf "0.0.0.0:%d" (int $root.Values.metrics.port))) "nats" $nats "topology" (include "crowsnest.topology" $root | fromYaml) -}}
{{- if (get $id "name") -}}
{{- $_ := set $cfg "ensure_topology" false -}}
{{- end -}}
{{- with (get $id "collectorID") -}}
{{- $_ := set $cfg "collectors" (dict "publish" (dict "collector_id" .)) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* crowsnest.topology: the topology section every component and the setup Job share. */}}
{{- define "crowsnest.topology" -}}
{{- $topology := deepCopy .Values.topology -}}
{{- if not (hasKey $topology "replicas") -}}
{{- $_ := set $topology "replicas" (ternary (int .Values.nats.replicas) 1 .Values.nats.enabled) -}}
{{- end -}}
{{- toYaml $topology -}}
{{- end -}}

{{/* crowsnest.natsVolumeMounts / natsVolumes: the identity's seed and TLS for NATS; dict root, component. */}}
{{- define "crowsnest.natsVolumeMounts" -}}
{{- $id := include "crowsnest.natsIdentity" . | fromYaml -}}
{{- if (get $id "name") }}
- name: nats-seed
  mountPath: /var/run/secrets/crowsnest/nats
  readOnly: true
{{- end }}
{{- if .root.Values.nats.tls.existingSecret }}
- name: nats-tls
  mountPath: /var/run/secrets/crowsnest/nats-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "crowsnest.natsVolumes" -}}
{{- $id := include "crowsnest.natsIdentity" . | fromYaml -}}
{{- if (get $id "name") }}
- name: nats-seed
  secret:
    secretName: {{ required (printf "%s is required when nats.auth.enabled" (get $id "value")) (get $id "secret") }}
    # Owner-read only (the kubelet adds group read for fsGroup).
    defaultMode: 0400
    items:
      - {key: {{ (get $id "name") }}.nk, path: {{ (get $id "name") }}.nk}
{{- end }}
{{- if .root.Values.nats.tls.existingSecret }}
- name: nats-tls
  secret:
    secretName: {{ .root.Values.nats.tls.existingSecret }}
{{- end }}
{{- end -}}

{{/* crowsnest.probes: liveness on /healthz, readiness on /readyz. */}}
{{- define "crowsnest.probes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: metrics}
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: metrics}
  periodSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/* crowsnest.scheduling: nodeSelector, tolerations, affinity of a component. */}}
{{- define "crowsnest.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
crowsnest.egressNATS: the NetworkPolicy egress rules every component has:
NATS (the in-chart cluster's pods, or nats.external) and DNS.
*/}}
{{- define "crowsnest.egressNATS" -}}
{{- if .Values.nats.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "crowsnest.selectorLabels" (dict "root" . "component" "nats") | nindent 10 }}
  ports:
    - {port: 4222, protocol: TCP}
{{- else }}
{{- if not .Values.nats.external.to }}
{{- fail "nats.external.to is required when nats.enabled is false and networkPolicy.enabled is true: the NetworkPolicy peers (ipBlock or selectors) of the external NATS cluster" }}
{{- end }}
- to:
    {{- toYaml .Values.nats.external.to | nindent 4 }}
  ports:
    {{- toYaml .Values.nats.external.ports | nindent 4 }}
{{- end }}
- to:
    {{- toYaml .Values.networkPolicy.dns | nindent 4 }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end -}}

{{/* crowsnest.ingressMetrics: the metrics port, from networkPolicy.metricsFrom. */}}
{{- define "crowsnest.ingressMetrics" -}}
- ports:
    - {port: {{ .Values.metrics.port }}, protocol: TCP}
  {{- with .Values.networkPolicy.metricsFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/*
crowsnest.networkPolicy: dict root, component, name, ingress (extra rules as
YAML), egress (extra rules as YAML). Default deny both ways, then NATS + DNS
out and metrics in.
*/}}
{{- define "crowsnest.networkPolicy" -}}
{{- if .root.Values.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "crowsnest.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "crowsnest.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- include "crowsnest.ingressMetrics" .root | nindent 4 }}
    {{- with get . "ingress" }}
    {{- . | nindent 4 }}
    {{- end }}
  egress:
    {{- include "crowsnest.egressNATS" .root | nindent 4 }}
    {{- with get . "egress" }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end -}}

{{/* crowsnest.metricsService: a headless Service for scraping one component. */}}
{{- define "crowsnest.metricsService" }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}-metrics
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "crowsnest.labels" . | nindent 4 }}
    crowsnest.dev/metrics: "true"
spec:
  clusterIP: None
  selector:
    {{- include "crowsnest.selectorLabels" . | nindent 4 }}
  ports:
    - {name: metrics, port: {{ .root.Values.metrics.port }}, targetPort: metrics, protocol: TCP}
{{- end -}}

{{/* crowsnest.serviceAccount: one per component, no token mounted. */}}
{{- define "crowsnest.serviceAccount" }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "crowsnest.labels" . | nindent 4 }}
automountServiceAccountToken: false
{{- end -}}

{{/* crowsnest.pdb: dict root, component, name, pdb (enabled, maxUnavailable). */}}
{{- define "crowsnest.pdb" -}}
{{- if .pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "crowsnest.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "crowsnest.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* crowsnest.hpa: dict root, component, name, hpa (autoscaling values). */}}
{{- define "crowsnest.hpa" -}}
{{- if .hpa.enabled }}
{{- if gt (int .hpa.minReplicas) (int .hpa.maxReplicas) }}
{{- fail (printf "%s: autoscaling.minReplicas (%d) is greater than maxReplicas (%d)" .component (int .hpa.minReplicas) (int .hpa.maxReplicas)) }}
{{- end }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "crowsnest.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .name }}
  minReplicas: {{ .hpa.minReplicas }}
  maxReplicas: {{ .hpa.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .hpa.targetCPUUtilizationPercentage }}
{{- end }}
{{- end -}}

{{/* crowsnest.natsConf: the in-chart servers' nats.conf; dict root, routes. */}}
{{- define "crowsnest.natsConf" -}}
{{- $v := .root.Values.nats -}}
# Rendered by the crowsnest chart. $POD_NAME comes from the environment.
server_name: $POD_NAME
listen: 0.0.0.0:4222
http: 0.0.0.0:8222
pid_file: /var/run/nats/nats.pid
lame_duck_duration: 30s
lame_duck_grace_period: 10s
{{- if $v.tls.serverSecret }}
tls {
  cert_file: /etc/nats/tls/tls.crt
  key_file: /etc/nats/tls/tls.key
  ca_file: /etc/nats/tls/ca.crt
  verify: {{ $v.tls.clientCert }}
}
{{- end }}
{{- if .root.Values.nats.auth.enabled }}
# One nkey user per identity, allow lists only (crowsnest nats-auth --out
# auth.conf), mounted from nats.auth.serverSecret. A client without a known
# nkey is refused.
include "auth/auth.conf"
{{- end }}
jetstream {
  store_dir: /data
  max_file_store: {{ $v.jetstream.maxFileStore }}
  max_memory_store: {{ $v.jetstream.maxMemoryStore }}
  sync_interval: {{ $v.jetstream.syncInterval }}
}
{{- if gt (int $v.replicas) 1 }}
cluster {
  name: {{ $v.clusterName }}
  listen: 0.0.0.0:6222
  routes: [
    {{- range .routes }}
    {{ . }}
    {{- end }}
  ]
}
{{- end }}
{{- end -}}

{{/*
crowsnest.goMemLimit: the Go runtime's soft memory limit at the container's
memory limit (bytes), so the collector of a busy stage works harder before
the kernel kills it; dict containerName.
*/}}
{{- define "crowsnest.goMemLimit" -}}
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef: {containerName: {{ .containerName }}, resource: limits.memory, divisor: "1"}
{{- end -}}
