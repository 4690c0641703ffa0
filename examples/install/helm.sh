# The namespace first: Helm keeps its release there, and the VIP agent needs `privileged`.
kubectl create namespace egressc-system
kubectl label namespace egressc-system pod-security.kubernetes.io/enforce=privileged
helm install egressc charts/egressc --namespace egressc-system \
  --set image.repository=registry.example/platform/egressc --set image.tag=0.1.0
