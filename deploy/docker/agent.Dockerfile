# SPDX-License-Identifier: Apache-2.0
# nines-agent image: tails container logs and scrapes metrics on a node.
# Multi-stage: Debian 12 with the -dev packages builds the program; the runtime stage has
# only the shared libraries it loads.
# Build from the repository root: docker build -f deploy/docker/agent.Dockerfile -t nines-agent .

FROM debian:12 AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libuv1-dev libh2o-dev libcurl4-openssl-dev libprotobuf-c-dev protobuf-c-compiler \
      libsnappy-dev libzstd-dev liblz4-dev libjansson-dev libyaml-dev libpcre2-dev \
      libxxhash-dev libssl-dev libcmocka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only the sources: build trees and demo data in a developer's checkout stay out of the image.
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY proto/ proto/
COPY common/ common/
COPY agent/ agent/
COPY aggregator/ aggregator/
COPY bench/ bench/
COPY tests/ tests/
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" --target nines-agent \
 && strip /build/agent/nines-agent \
 && /build/agent/nines-agent --version

FROM debian:12-slim
ARG DEBIAN_FRONTEND=noninteractive
# The runtime halves of the -dev packages above (the union for both programs, so an image
# does not break when a module starts using another library), and CA certificates for TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libuv1 libh2o0.13 libcurl4 libprotobuf-c1 libsnappy1v5 libzstd1 \
      liblz4-1 libjansson4 libyaml-0-2 libpcre2-8-0 libxxhash0 libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/agent/nines-agent /usr/bin/nines-agent
COPY deploy/base/config/agent.yml /etc/nines/agent.yml
# A numeric user (65532, as distroless "nonroot") so runAsNonRoot can verify it without an
# /etc/passwd entry; the state directory is a volume owned by it.
RUN mkdir -p /var/lib/nines-agent && chown 65532:65532 /var/lib/nines-agent
USER 65532:65532
VOLUME ["/var/lib/nines-agent"]
EXPOSE 9596
ENTRYPOINT ["/usr/bin/nines-agent"]
CMD ["--config=/etc/nines/agent.yml"]
