# syntax=docker/dockerfile:1
#
# provider-desk: the release binary, built with Rust and run on Debian slim as a non-root user.
#
#   docker build -t provider-desk .
#   docker run --rm -p 8080:8080 -v provider-desk-data:/var/lib/provider-desk/data provider-desk
#
# With nothing else set it keeps its data in SQLite under /var/lib/provider-desk/data (a volume),
# seeds no demo accounts (SEED_DEMO=false; -e SEED_DEMO=true for a demo) and, listening on
# 0.0.0.0, answers /metrics 403 until METRICS_TOKEN or METRICS_BIND is set (README, Monitoring).
# docker-compose.yml runs it on MongoDB + Redis. Every setting is an environment variable
# (README, Configuration). On `docker stop` (SIGTERM) it finishes requests in flight and closes
# WebSockets with 1001 within SHUTDOWN_TIMEOUT_SECS (default 20 s): give the container more than
# that (`docker stop -t 30`, compose's stop_grace_period).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /build
# Only what the build reads (see .dockerignore): the manifest and lock file, build.rs, src/, the
# REST documents and the committed playground build, which are compiled into the binary.
COPY . .
# BuildKit keeps the registry and target directory between builds; the binary is copied out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin provider-desk \
    && install -m 0755 target/release/provider-desk /usr/local/bin/provider-desk

FROM debian:${DEBIAN_RELEASE}-slim
# curl for the health check; the binary needs nothing else (TLS is rustls with built-in roots).
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 provider-desk \
    && useradd --system --uid 10001 --gid provider-desk --home-dir /var/lib/provider-desk \
        --shell /usr/sbin/nologin provider-desk \
    && mkdir -p /var/lib/provider-desk/data \
    && chown -R provider-desk:provider-desk /var/lib/provider-desk
COPY --from=build /usr/local/bin/provider-desk /usr/local/bin/provider-desk
USER provider-desk:provider-desk
WORKDIR /var/lib/provider-desk
ENV BIND=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/var/lib/provider-desk/data \
    LOG_FORMAT=json \
    SEED_DEMO=false
EXPOSE 8080
VOLUME ["/var/lib/provider-desk/data"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/healthz" > /dev/null || exit 1
ENTRYPOINT ["provider-desk"]
CMD ["serve"]
