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
# In a container the pod network is the boundary, so listen on all interfaces;
# JSON logs suit log shippers. Everything else keeps the service's defaults.
ENV OTP_LISTEN_ADDR=0.0.0.0:50051 \
    OTP_METRICS_ADDR=0.0.0.0:9464 \
    OTP_LOG_FORMAT=json
EXPOSE 50051 9464
# 65532 is the distroless `nonroot` user; numeric so runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/otp-service"]
