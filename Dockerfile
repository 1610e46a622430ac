# syntax=docker/dockerfile:1
# The dartts image: one static-ish binary on a distroless base, run as a non-root user, with
# nothing writable but the data volume and /tmp (read-only root filesystem friendly).
#
#   docker build -t dartts .
#   docker run --read-only --tmpfs /tmp -v dartts-data:/var/lib/dartts -p 8080:8080 \
#     -e DARTTS_LISTEN=0.0.0.0:8080 -e DARTTS_OIDC_ISSUER=… dartts
#
# Health: GET /healthz (the process answers) and GET /readyz (and its database answers) on the
# plain listener. The runtime image has no shell or HTTP client, so there is no HEALTHCHECK
# instruction: the orchestrator probes those paths (the Helm chart's startup, liveness and
# readiness probes; `docker run --health-cmd` cannot, for the same reason).

# --- build -------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY api/Cargo.toml api/Cargo.toml
COPY entities/Cargo.toml entities/Cargo.toml
COPY migration/Cargo.toml migration/Cargo.toml
COPY tests/Cargo.toml tests/Cargo.toml
RUN mkdir -p api/src entities/src migration/src tests/harness tests/bin \
 && echo 'fn main() {}' > api/src/main.rs && touch api/src/lib.rs entities/src/lib.rs \
    migration/src/lib.rs tests/harness/lib.rs && echo 'fn main() {}' > tests/bin/dartts.rs \
 && cargo fetch --locked
COPY . .
RUN touch api/src/main.rs api/src/lib.rs entities/src/lib.rs migration/src/lib.rs \
 && cargo build --release --locked -p dartts \
 && install -D target/release/dartts /out/dartts \
 && install -d -o 65532 -g 65532 /out/data

# --- runtime -----------------------------------------------------------------------------
# glibc + CA certificates (the SDN refresh and OIDC discovery use HTTPS), nothing else.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/dartts /usr/local/bin/dartts
COPY --from=build --chown=65532:65532 /out/data /var/lib/dartts
ENV DARTTS_DATA_DIR=/var/lib/dartts
VOLUME ["/var/lib/dartts"]
USER 65532:65532
EXPOSE 8080 8443 9464
ENTRYPOINT ["/usr/local/bin/dartts"]
CMD ["serve"]
