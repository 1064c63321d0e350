# syntax=docker/dockerfile:1
# Multi-stage build: compile with the full Rust toolchain, ship only the
# stripped binary on a distroless base (no shell, no package manager).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# protoc comes vendored through the protoc-bin-vendored crate: nothing to apt-get.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
RUN cargo build --release --locked --bin otp-service \
 && strip target/release/otp-service

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/otp-service /usr/local/bin/otp-service
# The OTP API stays on loopback: as a sidecar the app reaches it on
# localhost:50051, and nothing else in the pod network can send codes. The
# kubelet's probes dial the pod IP, so health has a listener of its own on all
# interfaces that serves grpc.health.v1 and nothing else; so do metrics. To
# serve other pods, set OTP_LISTEN_ADDR=0.0.0.0:50051 together with caller
# authentication (OTP_TLS_*, OTP_CALLERS_FILE). JSON logs suit log shippers.
ENV OTP_LISTEN_ADDR=127.0.0.1:50051 \
    OTP_HEALTH_ADDR=0.0.0.0:50052 \
    OTP_METRICS_ADDR=0.0.0.0:9464 \
    OTP_LOG_FORMAT=json
# Only what is reachable from outside the container: health and metrics.
EXPOSE 50052 9464
# 65532 is the distroless `nonroot` user; numeric so runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/otp-service"]
