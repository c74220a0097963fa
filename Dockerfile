# syntax=docker/dockerfile:1
#
# prefeval container image: two stages.
#
#   build    rust:1.95.0-slim-bookworm. Dependencies are compiled first against Cargo.toml and
#            Cargo.lock alone (with a stub main.rs and lib.rs), so that layer is reused until the
#            manifest or the lock file changes. Then the real sources are copied in and built.
#   runtime  gcr.io/distroless/cc-debian12:nonroot: glibc, libgcc, libstdc++, OpenSSL, CA
#            certificates and tzdata; no shell, no package manager, no curl. Runs as 65532:65532.
#
# Why glibc and distroless/cc, not a static musl binary on distroless/static or scratch:
# musl's allocator is much slower for this allocation-heavy work (JSON decoding and encoding, a
# vector per list). The same commit built both ways, one worker, the same load (medians of three
# interleaved 10-second runs, deploy/README.md "Capacity"): glibc answered 2.6x (small.json),
# 3.8x (medium.json) and 1.8x (large.json) the requests per second of musl. That was measured
# before the binary brought its own allocator (mimalloc, docs/performance.md), which takes the
# libc allocator out of the question; glibc and distroless/cc stay because they are what is built
# and checked here. distroless/cc costs about 20 MB more than distroless/static. The build stage is Debian 12 (bookworm), as is the runtime image, so the
# binary never needs a newer glibc than the one it runs on.
#
# CI cannot run docker. It builds the binary with exactly the command and target below and
# smoke-tests it (scripts/deploy-check.sh reads these two lines; keep them in step with the RUN
# line of the build stage):
# build-command: cargo build --release --locked
# binary: target/release/prefeval
# (target: the host's x86_64-unknown-linux-gnu, Debian 12 glibc)

FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src

# 1. Dependencies only: cached until a Cargo.toml or Cargo.lock changes. The workspace's crates
#    get empty sources here, and are dropped from the cache before the real build.
COPY Cargo.toml Cargo.lock ./
COPY crates/core/Cargo.toml crates/core/
COPY crates/testkit/Cargo.toml crates/testkit/
RUN mkdir -p src crates/core/src crates/testkit/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs crates/core/src/lib.rs crates/testkit/src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src crates/core/src crates/testkit/src target/release/prefeval \
       target/release/deps/prefeval* target/release/deps/libprefeval* target/release/.fingerprint/prefeval*

# 2. The service itself. include_str!/include_bytes! embed openapi.yaml and assets/.
COPY openapi.yaml ./
COPY assets ./assets
COPY crates ./crates
COPY src ./src
RUN cargo build --release --locked \
    && ./target/release/prefeval --version

FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
ARG SOURCE_URL=https://example.invalid/prefeval
LABEL org.opencontainers.image.title="prefeval" \
      org.opencontainers.image.description="HTTP service that scores reward models against human rankings: Bradley-Terry pair probabilities, listwise loss, pairwise accuracy" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /src/target/release/prefeval /prefeval

# Inside a container the service must listen on every interface; outside, the default stays
# loopback. `prefeval healthcheck` reads the same variable and probes 127.0.0.1:8080.
ENV PREFEVAL_LISTEN=0.0.0.0:8080
USER 65532:65532
EXPOSE 8080

# No shell or curl in the image: the binary probes itself (GET /healthz, exit 0 on 200). When the
# container sets PREFEVAL_METRICS_LISTEN (an admin listener, as deploy/compose does), the probe goes
# there: its connection slots are its own, so a flood on port 8080 cannot starve the health check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/prefeval", "healthcheck", "--timeout-secs", "3"]

ENTRYPOINT ["/prefeval"]
CMD ["serve"]
