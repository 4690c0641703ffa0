# egressc as a Kustomize plugin: sources compiled, everything else passed through.
KUSTOMIZE_PLUGIN_HOME=$PWD/examples/kustomize/krm/plugin \
  kubectl kustomize --enable-alpha-plugins examples/kustomize/krm \
  | kubectl apply --server-side -f -
