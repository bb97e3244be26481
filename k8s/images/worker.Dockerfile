# syntax=docker/dockerfile:1
# Feira's worker image: the C daemons of workers/ (notification-worker,
# payment-worker, analytics-worker), one image, the Deployment picks the
# binary (k8s/workers/).  Build from the repository root:
#
#   docker build -f k8s/images/worker.Dockerfile -t feira/worker:0.1.0 .
#
# It builds the way `make workers` does (workers/Makefile), into /build,
# with the notification templates at their installed place; the payment
# worker's realtime publish script comes from docs/events.md.

FROM debian:12 AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config librdkafka-dev libmongoc-dev libbson-dev \
      libjansson-dev libcurl4-openssl-dev libssl-dev libhiredis-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY workers ./workers
COPY docs/events.md ./docs/events.md
ARG TEMPLATES=/usr/local/share/feira/notification-templates
RUN make -C workers BUILD=/build NW_TPL=${TEMPLATES} -j"$(nproc)" \
 && mkdir -p /out \
 && cp /build/*-worker /build/dlq-replay /out/

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librdkafka1 libmongoc-1.0-0 libbson-1.0-0 libjansson4 libcurl4 \
      libssl3 libhiredis0.14 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /nonexistent \
      --no-create-home --shell /usr/sbin/nologin feira
COPY --from=build /out/ /usr/local/bin/
COPY workers/notification-worker/templates \
     /usr/local/share/feira/notification-templates
# every binary finds its libraries
RUN for b in /usr/local/bin/*-worker /usr/local/bin/dlq-replay; do \
      ! ldd "$b" | grep -q 'not found' || { ldd "$b"; exit 1; }; \
    done
USER 10001:10001
EXPOSE 9100
# the Deployment names the worker: command: [/usr/local/bin/<name>]
