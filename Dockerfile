# syntax=docker/dockerfile:1
# One image for the controller (`egressc sync`), the VIP agent (`egressc agent`) and the Argo CD
# plugin (`egressc build --argocd`); the `krm` target is the Kustomize/kpt function image
# (`egressc krm` as entrypoint). Not built in this repository's CI: the development machines
# have no container engine.
#
#   docker build -t egressc:0.1.0 .                  # the default image reference (local tag)
#   docker build --target krm -t egressc-krm:0.1.0 .
#   docker build --build-arg VERSION=0.1.0 -t REGISTRY/egressc:0.1.0 . && docker push …
#
# Every default of egressc (install, Helm chart, Kustomize base, VIP agent, Argo CD sidecar) is
# `egressc:<version>`, which no registry serves: push the image and set it (warning W030).

ARG RUST_IMAGE=rust:1-bookworm

# Dependencies are compiled in their own layer (cargo-chef), rebuilt only when Cargo.toml or
# Cargo.lock change, not on every source edit.
FROM ${RUST_IMAGE} AS chef
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /src
# A stripped binary without debug info (~20 MB instead of ~127 MB with the line tables the
# development profile keeps for backtraces).
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=symbols

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin egressc
COPY . .
RUN cargo build --release --locked --bin egressc

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="egressc" \
      org.opencontainers.image.description="Hot-standby egress gateways for Cilium: compiler, controller, VIP agent, Argo CD plugin" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /src/target/release/egressc /usr/local/bin/egressc
# The controller and the plugin run as non-root (65532 here, 999 in the Argo CD sidecar). The
# agent's DaemonSet sets runAsUser: 0 with only NET_ADMIN and NET_RAW: raw ARP/NDP sockets and
# netlink address changes need them.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/egressc"]

# The KRM function image: Kustomize and kpt run the image with the ResourceList on stdin.
FROM runtime AS krm
ENTRYPOINT ["/usr/local/bin/egressc", "krm"]

# The default target.
FROM runtime
