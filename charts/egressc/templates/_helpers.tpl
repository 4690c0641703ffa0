{{/* Names and labels: the same as `egressc install` renders (src/render/install.rs). */}}
{{- define "egressc.name" -}}egressc-sync{{- end }}

{{- define "egressc.selectorLabels" -}}
app.kubernetes.io/component: sync
app.kubernetes.io/name: egressc
{{- end }}

{{- define "egressc.labels" -}}
app.kubernetes.io/component: sync
app.kubernetes.io/managed-by: egressc
app.kubernetes.io/name: egressc
{{- end }}

{{- define "egressc.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The `sync` flags install renders itself; extraArgs may not set them. */}}
{{- define "egressc.reservedArgs" -}}
metrics-addr cilium-version cilium-namespace namespace identity
{{- end }}

{{/* Namespaced RBAC, merged per namespace in grant order (render::install::namespace_roles),
     as YAML: {namespace: [rule, ...]}. */}}
{{- define "egressc.namespaceRoles" -}}
{{- /* Watched kinds: list and watch, no get (kube-rs watchers never GET). */ -}}
{{- $watch := list "list" "watch" -}}
{{- $grants := list
  (list .Release.Namespace (dict "apiGroups" (list "coordination.k8s.io") "resources" (list "leases") "verbs" (list "get" "list" "watch" "create" "update" "patch" "delete")))
  (list .Release.Namespace (dict "apiGroups" (list "") "resources" (list "pods") "verbs" $watch))
  (list .Values.cilium.namespace (dict "apiGroups" (list "") "resources" (list "pods") "verbs" $watch))
  (list "kube-node-lease" (dict "apiGroups" (list "coordination.k8s.io") "resources" (list "leases") "verbs" $watch))
  (list "default" (dict "apiGroups" (list "events.k8s.io") "resources" (list "events") "verbs" (list "create" "patch")))
-}}
{{- $roles := dict -}}
{{- range $grant := $grants -}}
{{- $ns := index $grant 0 -}}
{{- $rule := index $grant 1 -}}
{{- $rules := get $roles $ns | default list -}}
{{- if not (has $rule $rules) -}}
{{- $_ := set $roles $ns (append $rules $rule) -}}
{{- end -}}
{{- end -}}
{{- toYaml $roles -}}
{{- end }}
