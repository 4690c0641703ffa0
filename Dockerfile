# One image for the controller (`egressc sync`), the VIP agent (`egressc agent`) and the Argo CD
# plugin (`egressc build --argocd`). Not built in this repo's CI: the development machines have
# no container engine.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin egressc

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/egressc /usr/local/bin/egressc
# The controller and the plugin run as non-root (65532 here, 999 in the Argo CD sidecar). The
# agent's DaemonSet sets runAsUser: 0 with only NET_ADMIN and NET_RAW: raw ARP/NDP sockets and
# netlink address changes need them.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/egressc"]
