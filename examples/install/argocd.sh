# The plugin sidecar of argocd-repo-server (or include examples/argocd as a Kustomize Component).
kubectl -n argocd create configmap egressc-cmp-plugin --from-file=examples/argocd/plugin.yaml
kubectl -n argocd patch deployment argocd-repo-server --patch-file examples/argocd/repo-server-patch.yaml
kubectl apply -f examples/argocd/application.yaml
