# syntax=docker/dockerfile:1
# Feira's nginx image: Debian 12's nginx with the Feira modules baked in.
# The first stage builds the modules as the Makefile does, against
# nginx-dev's copy of the nginx source; the second installs exactly that
# nginx version, so the modules are binary compatible (checked below by
# loading them).  Build from the repository root:
#
#   docker build -f k8s/images/nginx.Dockerfile -t feira/nginx:0.1.0 .

FROM debian:12 AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# scripts/install-deps.sh's build packages
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential nginx nginx-dev libpcre2-dev zlib1g-dev libssl-dev \
      libjansson-dev libjwt-dev libhiredis-dev libmongoc-dev libbson-dev \
      librdkafka-dev libcurl4-openssl-dev libargon2-dev pkg-config \
      nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# the provider dashboard page: its files and Chart.js from npm
# (scripts/install-dashboard.sh's steps, without the test tools)
COPY dashboard/package.json dashboard/package-lock.json ./dashboard/
RUN cd dashboard && npm ci --omit=dev --no-audit --no-fund
COPY dashboard/src ./dashboard/src
RUN mkdir -p /out/dashboard/vendor \
 && cp dashboard/src/index.html dashboard/src/app.js dashboard/src/style.css \
      /out/dashboard/ \
 && cp dashboard/node_modules/chart.js/dist/chart.umd.js /out/dashboard/vendor/ \
 && cp dashboard/node_modules/chart.js/LICENSE.md \
      /out/dashboard/vendor/chart.js.LICENSE.md
COPY config ./
COPY nginx-modules ./nginx-modules
# the Makefile's build: Debian's own configure flags (conf_flags) plus the
# stream headers and the addon, then only our modules (nginx-dev has no
# stream sources: the stream core is Debian's libnginx-mod-stream)
RUN cp -r /usr/share/nginx/src /build \
 && cd /build \
 && . ./conf_flags \
 && ./configure "${NGX_CONF_FLAGS[@]}" \
      --with-stream=dynamic --add-dynamic-module=/src \
      --with-cc-opt="-Wall -Wextra -Werror -O2 -g" > configure.log \
 && make -f objs/Makefile $(sed -n 's/^modules:[[:space:]]*//p' objs/Makefile \
      | grep -v '^objs/ngx_stream_module\.so$') \
 && mkdir -p /out \
 && cp objs/ngx_http_feira_*_module.so objs/ngx_stream_feira_*_module.so \
      /out/ \
 && dpkg-query -W -f='${Version}' nginx-dev > /out/nginx-version

FROM debian:12-slim
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=build /out/nginx-version /tmp/nginx-version
# nginx of the version the modules were built against, the modules'
# shared libraries, envsubst for the entrypoint
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      "nginx=$(cat /tmp/nginx-version)" \
      "libnginx-mod-stream=$(cat /tmp/nginx-version)" \
      libjansson4 libjwt0 libhiredis0.14 libmongoc-1.0-0 libbson-1.0-0 \
      librdkafka1 libargon2-1 libssl3 gettext-base ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/nginx-version \
 && useradd --system --uid 10001 --user-group --home-dir /nonexistent \
      --no-create-home --shell /usr/sbin/nologin feira
COPY --from=build /out/*.so /usr/lib/nginx/modules/
COPY --from=build /out/dashboard /usr/share/feira/dashboard
COPY k8s/images/nginx-entrypoint.sh /usr/local/bin/feira-nginx
# every module loads into this nginx (common first, the others need it)
RUN { echo "load_module /usr/lib/nginx/modules/ngx_http_feira_common_module.so;"; \
      for m in /usr/lib/nginx/modules/ngx_http_feira_*_module.so; do \
        [ "${m##*/}" = ngx_http_feira_common_module.so ] \
          || echo "load_module $m;"; \
      done; \
      echo "load_module /usr/lib/nginx/modules/ngx_stream_module.so;"; \
      for m in /usr/lib/nginx/modules/ngx_stream_feira_*_module.so; do \
        echo "load_module $m;"; \
      done; \
      echo "events {}"; } > /tmp/modules.conf \
 && nginx -t -q -e stderr -c /tmp/modules.conf \
 && rm /tmp/modules.conf
# conf (ConfigMap) in /etc/feira/conf, secrets in /etc/feira/secrets,
# everything written under /tmp/nginx (an
# emptyDir): the root file system can be read-only
ENV FEIRA_MODULES_DIR=/usr/lib/nginx/modules \
    FEIRA_NGINX_DIR=/tmp/nginx \
    FEIRA_SECRETS_DIR=/etc/feira/secrets \
    FEIRA_CONF_TEMPLATE=/etc/feira/conf/nginx.conf \
    FEIRA_HTTP_PORT=8080 \
    FEIRA_STREAM_PORT=8081 \
    FEIRA_WORKERS=auto
USER 10001:10001
EXPOSE 8080 8081
# graceful: in-flight requests finish and Kafka is flushed
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/local/bin/feira-nginx"]
