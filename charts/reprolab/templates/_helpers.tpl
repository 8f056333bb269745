{{/* Names. */}}
{{- define "reprolab.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "reprolab.fullname" -}}
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

{{/* "<fullname>-<component>"; call with (dict "root" $ "component" "gateway"). */}}
{{- define "reprolab.componentName" -}}
{{- printf "%s-%s" (include "reprolab.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "reprolab.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: reprolab
{{ include "reprolab.selectorLabels" . }}
{{- end -}}

{{- define "reprolab.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reprolab.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "reprolab.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{/* Pod Security "restricted": non-root, no escalation, no capabilities, RuntimeDefault seccomp. */}}
{{- define "reprolab.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "reprolab.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Required configuration: NOTES.txt and every workload include this, so a missing value fails the render. */}}
{{- define "reprolab.validate" -}}
{{- if not (or .Values.postgresql.url .Values.postgresql.existingSecret) -}}
{{- fail "postgresql.url or postgresql.existingSecret is required (the DSN of PostgreSQL)" -}}
{{- end -}}
{{- $_ := required "nats.url is required (NATS with JetStream)" .Values.nats.url -}}
{{- if and .Values.nats.tls.enabled (not .Values.nats.tls.caSecret) -}}
{{- fail "nats.tls.caSecret is required when nats.tls.enabled (the CA of the NATS server certificate)" -}}
{{- end -}}
{{- range $svc := list "gateway" "registry" "builder" "runner" "audit" -}}
{{- $c := index $.Values.nats.auth $svc -}}
{{- if not (or $c.existingSecret (and $c.user $c.password)) -}}
{{- fail (printf "nats.auth.%s needs user and password, or existingSecret (keys nats-user, nats-password)" $svc) -}}
{{- end -}}
{{- end -}}
{{- $_ := required "objectStore.bucket is required (S3 bucket)" .Values.objectStore.bucket -}}
{{- if not (or .Values.objectStore.existingSecret (and .Values.objectStore.accessKeyId .Values.objectStore.secretAccessKey)) -}}
{{- fail "objectStore.accessKeyId and objectStore.secretAccessKey, or objectStore.existingSecret, are required" -}}
{{- end -}}
{{- $_ := required "ociRegistry.host is required (registry build pods push to; not 127.0.0.1, a pod's own loopback)" .Values.ociRegistry.host -}}
{{- if or (hasPrefix "127." .Values.ociRegistry.host) (hasPrefix "localhost" .Values.ociRegistry.host) -}}
{{- fail "ociRegistry.host must not be a loopback address: inside a build pod it is the pod itself" -}}
{{- end -}}
{{- if not (or .Values.ociRegistry.existingSecret (and .Values.ociRegistry.username .Values.ociRegistry.password)) -}}
{{- fail "ociRegistry.username and ociRegistry.password, or ociRegistry.existingSecret (key auth.json), are required" -}}
{{- end -}}
{{- $_ := required "audit.signingKeySecret is required: every audit replica must sign with the same key" .Values.audit.signingKeySecret -}}
{{- end -}}

{{- define "reprolab.natsSecretName" -}}
{{- $c := index .root.Values.nats.auth .component -}}
{{- if $c.existingSecret -}}{{ $c.existingSecret }}{{- else -}}{{ include "reprolab.componentName" . }}-nats{{- end -}}
{{- end -}}

{{- define "reprolab.databaseSecretName" -}}
{{- if .Values.postgresql.existingSecret -}}{{ .Values.postgresql.existingSecret }}{{- else -}}{{ include "reprolab.fullname" . }}-postgresql{{- end -}}
{{- end -}}

{{- define "reprolab.s3SecretName" -}}
{{- if .Values.objectStore.existingSecret -}}{{ .Values.objectStore.existingSecret }}{{- else -}}{{ include "reprolab.fullname" . }}-s3{{- end -}}
{{- end -}}

{{/* An image pinned by digest when one is given: (list "repo:tag" "sha256:...") -> repo@sha256:... */}}
{{- define "reprolab.pinned" -}}
{{- $image := index . 0 -}}{{- $digest := index . 1 -}}
{{- if $digest -}}
{{- $repo := regexReplaceAll ":[^:/]+$" (regexReplaceAll "@.*$" $image "") "" -}}
{{- printf "%s@%s" $repo $digest -}}
{{- else -}}
{{- $image -}}
{{- end -}}
{{- end -}}

{{/* Egress to anywhere but the cluster's CIDRs and link-local addresses (cloud metadata), IPv4 and IPv6. */}}
{{- define "reprolab.outsideCluster" -}}
{{- $v4 := list -}}{{- $v6 := list -}}
{{- range .Values.networkPolicy.clusterCidrs -}}
{{- if contains ":" . }}{{ $v6 = append $v6 . }}{{ else }}{{ $v4 = append $v4 . }}{{ end -}}
{{- end -}}
{{- $v4 = append $v4 "169.254.0.0/16" -}}{{- $v6 = append $v6 "fe80::/10" -}}
{{- if not (has "fc00::/7" $v6) }}{{ $v6 = append $v6 "fd00:ec2::254/128" }}{{ end -}}
- ipBlock:
    cidr: 0.0.0.0/0
    except: {{ toJson $v4 }}
- ipBlock:
    cidr: ::/0
    except: {{ toJson $v6 }}
{{- end -}}

{{- define "reprolab.registryAuthSecretName" -}}
{{- if .Values.ociRegistry.existingSecret -}}{{ .Values.ociRegistry.existingSecret }}{{- else -}}{{ include "reprolab.fullname" . }}-registry-auth{{- end -}}
{{- end -}}

{{/* Environment every service shares: database, bus (with its own identity), object store. */}}
{{- define "reprolab.commonEnv" -}}
- name: REPROLAB_DATA_DIR
  value: /var/lib/reprolab
- name: REPROLAB_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "reprolab.databaseSecretName" .root }}
      key: {{ ternary .root.Values.postgresql.existingSecretKey "database-url" (ne .root.Values.postgresql.existingSecret "") }}
- name: REPROLAB_DATABASE_SCHEMA_PREFIX
  value: {{ .root.Values.postgresql.schemaPrefix | quote }}
- name: REPROLAB_NATS_URL
  value: {{ .root.Values.nats.url | quote }}
- name: REPROLAB_NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ include "reprolab.natsSecretName" . }}
      key: nats-user
- name: REPROLAB_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "reprolab.natsSecretName" . }}
      key: nats-password
- name: REPROLAB_NATS_STREAM_REPLICAS
  value: {{ .root.Values.nats.streamReplicas | quote }}
{{- if .root.Values.nats.tls.enabled }}
- name: REPROLAB_NATS_TLS_CA_FILE
  value: /etc/reprolab/nats-ca/{{ .root.Values.nats.tls.caKey }}
{{- end }}
- name: REPROLAB_OBJECT_STORE
  value: s3
- name: REPROLAB_S3_BUCKET
  value: {{ .root.Values.objectStore.bucket | quote }}
{{- with .root.Values.objectStore.endpointUrl }}
- name: REPROLAB_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
- name: REPROLAB_S3_REGION
  value: {{ .root.Values.objectStore.region | quote }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "reprolab.s3SecretName" .root }}
      key: access-key-id
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "reprolab.s3SecretName" .root }}
      key: secret-access-key
{{- end -}}

{{/*
One Deployment per service, from one template: (dict "root" $ "component" "builder" "env" <yaml list> "ports" <yaml> "probes" <yaml> "volumes" <yaml> "mounts" <yaml> "serviceAccount" true).
*/}}
{{- define "reprolab.deployment" -}}
{{- include "reprolab.validate" .root -}}
{{- $v := index .root.Values .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "reprolab.componentName" . }}
  labels:
    {{- include "reprolab.labels" . | nindent 4 }}
  {{- with $v.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- if not (and (eq .component "gateway") .root.Values.gateway.autoscaling.enabled) }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "reprolab.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "reprolab.labels" . | nindent 8 }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "reprolab.componentName" . }}
      automountServiceAccountToken: {{ ternary "true" "false" (has .component (list "builder" "runner")) }}
      {{- with .root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "reprolab.podSecurityContext" . | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ include "reprolab.image" .root }}
          imagePullPolicy: {{ .root.Values.image.pullPolicy }}
          command: ["python", "-m", "reprolab_{{ .component }}"]
          securityContext:
            {{- include "reprolab.containerSecurityContext" . | nindent 12 }}
          env:
            {{- include "reprolab.commonEnv" . | nindent 12 }}
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with .ports }}
          ports:
            {{- . | nindent 12 }}
          {{- end }}
          {{- with .probes }}
          {{- . | nindent 10 }}
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /var/lib/reprolab
            - name: tmp
              mountPath: /tmp
            {{- if .root.Values.nats.tls.enabled }}
            - name: nats-ca
              mountPath: /etc/reprolab/nats-ca
              readOnly: true
            {{- end }}
            {{- with .mounts }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        # Scratch only (state lives in PostgreSQL and S3); sized so a pod cannot fill the node's disk.
        - name: data
          emptyDir:
            sizeLimit: 256Mi
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
        {{- if .root.Values.nats.tls.enabled }}
        - name: nats-ca
          secret:
            secretName: {{ .root.Values.nats.tls.caSecret }}
        {{- end }}
        {{- with .volumes }}
        {{- . | nindent 8 }}
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{- define "reprolab.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "reprolab.componentName" . }}
  labels:
    {{- include "reprolab.labels" . | nindent 4 }}
automountServiceAccountToken: false
{{- end -}}

{{- define "reprolab.natsSecret" -}}
{{- $c := index .root.Values.nats.auth .component -}}
{{- if not $c.existingSecret }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "reprolab.componentName" . }}-nats
  labels:
    {{- include "reprolab.labels" . | nindent 4 }}
type: Opaque
stringData:
  nats-user: {{ $c.user | quote }}
  nats-password: {{ $c.password | quote }}
{{- end }}
{{- end -}}

{{- define "reprolab.pdb" -}}
{{- $v := index .root.Values .component -}}
{{- if $v.pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "reprolab.componentName" . }}
  labels:
    {{- include "reprolab.labels" . | nindent 4 }}
spec:
  minAvailable: {{ $v.pdb.minAvailable }}
  selector:
    matchLabels:
      {{- include "reprolab.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* Every service: DNS, PostgreSQL, NATS, S3. Extra egress rules in .extraEgress. */}}
{{- define "reprolab.networkPolicy" -}}
{{- if .root.Values.networkPolicy.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "reprolab.componentName" . }}
  labels:
    {{- include "reprolab.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "reprolab.selectorLabels" . | nindent 6 }}
  policyTypes: ["Ingress", "Egress"]
  {{- with .ingress }}
  ingress:
    {{- . | nindent 4 }}
  {{- end }}
  egress:
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ .root.Values.networkPolicy.dnsNamespace }}
      ports:
        - {port: 53, protocol: UDP}
        - {port: 53, protocol: TCP}
    # PostgreSQL, NATS, S3 (and for the builder, the OCI registry) in the cluster...
    - to:
        - namespaceSelector:
            {{- toYaml .root.Values.networkPolicy.dependencyNamespaceSelector | nindent 12 }}
      ports:
        - {port: 5432, protocol: TCP}
        - {port: 4222, protocol: TCP}
        - {port: 443, protocol: TCP}
        - {port: 9000, protocol: TCP}
        - {port: 5000, protocol: TCP}
    {{- with .root.Values.networkPolicy.externalEgressCidrs }}
    # ...or outside it.
    - to:
        {{- range . }}
        - ipBlock:
            cidr: {{ . }}
        {{- end }}
    {{- end }}
    {{- with .extraEgress }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end -}}
