# deploy/ is the base (`egressc install` with its defaults); the overlay sets your image.
kubectl apply --server-side -k examples/kustomize/controller
