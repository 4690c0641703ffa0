# Deckhouse's cilium-agents are app=agent,module=cni-cilium in d8-cni-cilium.
egressc install --image registry.example/platform/egressc:0.1.0 \
  --cilium-namespace d8-cni-cilium --cilium-selector app=agent,module=cni-cilium \
  | kubectl apply --server-side -f -
