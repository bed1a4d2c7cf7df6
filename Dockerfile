# faasd: ONE image for every role. The role is the command:
#
#   docker build -t faasd:0.1.0 .
#   docker run --rm faasd:0.1.0 --version
#   docker run --rm -e FAASD_KAFKA_BROKERS=kafka1:9092 faasd:0.1.0 worker
#   docker build --target scaler -t faasd:0.1.0-scaler .   # + docker-compose (optional)
#
# Every option --some-name is also read from FAASD_SOME_NAME (see `faasd --help`),
# which is how deploy/compose/faas.yml and the Kumori manifests configure it.
# Checked here without an engine or registry by scripts/image-check.sh
# (debootstrap'ed base images + podman build --pull=never); see docs/deployment.md.

ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------
# Build stage: Debian 12 toolchain and -dev packages, Release build, no tests.
# ---------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      g++ cmake ninja-build ccache pkg-config file \
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev \
      librdkafka-dev libgit2-dev libssl-dev libcli11-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the build reads (tests, docs and deploy files are not part of the image).
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake/ cmake/
COPY include/ include/
COPY src/ src/
COPY roles/ roles/
# The job JSON Schema is compiled into the frontend (served in /openapi.json).
COPY config/job.schema.json config/job.schema.json
# The ccache directory is a build cache mount (BuildKit and buildah both support it),
# so a rebuild after a small change recompiles only what changed. The runtime
# packages are derived from the binary's shared libraries (ldd + dpkg -S), so a
# new dependency cannot be forgotten in the stage below.
RUN --mount=type=cache,target=/ccache \
    export CCACHE_DIR=/ccache CCACHE_MAXSIZE=2G \
 && cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DFAASD_BUILD_TESTS=OFF -DFAASD_BUILD_BENCH=OFF \
 && cmake --build /build \
 && install -D -s -m 0755 /build/roles/faasd /out/usr/local/bin/faasd \
 && /out/usr/local/bin/faasd --version \
 && ldd /out/usr/local/bin/faasd | awk '/=> \//{print $3}' \
    | while read -r lib; do dpkg -S "*/$(basename "$lib")" ; done \
    | cut -d: -f1 | sort -u > /out/runtime-packages.txt \
 && cat /out/runtime-packages.txt

# ---------------------------------------------------------------------------
# Runtime stage: the shared libraries faasd links, git and bubblewrap (the worker
# clones functions and runs them sandboxed), the interpreters the example
# functions need (sh is in the base; python3), CA certificates; a non-root user.
# ---------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      $(cat /tmp/runtime-packages.txt) git bubblewrap python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log /tmp/runtime-packages.txt \
 && groupadd --system --gid 10001 faasd \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/faasd --create-home \
      --shell /usr/sbin/nologin faasd \
 && install -d -o faasd -g faasd -m 0750 /var/lib/faasd/cache
COPY --from=build /out/usr/local/bin/faasd /usr/local/bin/faasd
# The example functions (examples/functions/, docs/functions.md), e.g. for `faasd dev` in the image.
COPY examples/functions/ /usr/share/faasd/examples/functions/
USER 10001:10001
WORKDIR /var/lib/faasd
ENTRYPOINT ["/usr/local/bin/faasd"]
CMD ["--help"]

# ---------------------------------------------------------------------------
# Optional target `scaler`: the runtime image plus Debian's docker-compose (1.29,
# talks to the engine's API through a mounted /var/run/docker.sock), for the
# `scaler` profile of deploy/compose/faas.yml (`faasd scaler --exec 'docker-compose
# ... up --scale worker={workers}'`). It runs as root: the socket is root anyway.
# ---------------------------------------------------------------------------
FROM runtime AS scaler
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends docker-compose \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log

# The default target (the last stage): the runtime image.
FROM runtime
