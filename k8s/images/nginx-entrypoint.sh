#!/bin/sh
# The nginx image's entrypoint: renders the nginx.conf template (the
# ConfigMap) with the ${FEIRA_*} values of the environment, as
# scripts/render-conf.sh does for the local stack, then runs nginx in the
# foreground.  Only these names are substituted; nginx's $variables stay.
set -eu

: "${FEIRA_NGINX_DIR:=/tmp/nginx}"
: "${FEIRA_SECRETS_DIR:=/etc/feira/secrets}"
: "${FEIRA_CONF_TEMPLATE:=/etc/feira/conf/nginx.conf}"
: "${FEIRA_HTTP_PORT:=8080}"
: "${FEIRA_STREAM_PORT:=8081}"
: "${FEIRA_WORKERS:=auto}"
: "${FEIRA_MODULES_DIR:=/usr/lib/nginx/modules}"
: "${FEIRA_DASHBOARD_DIR:=/usr/share/feira/dashboard}"
: "${FEIRA_MONGO_URI:?FEIRA_MONGO_URI is not set}"
: "${FEIRA_REDIS:?FEIRA_REDIS is not set}"
: "${FEIRA_KAFKA_BROKERS:?FEIRA_KAFKA_BROKERS is not set}"
export FEIRA_NGINX_DIR FEIRA_SECRETS_DIR FEIRA_HTTP_PORT FEIRA_WORKERS FEIRA_MODULES_DIR \
       FEIRA_MONGO_URI FEIRA_REDIS FEIRA_KAFKA_BROKERS FEIRA_STREAM_PORT \
       FEIRA_DASHBOARD_DIR

mkdir -p "$FEIRA_NGINX_DIR/tmp" "$FEIRA_NGINX_DIR/logs"
envsubst '${FEIRA_NGINX_DIR} ${FEIRA_SECRETS_DIR} ${FEIRA_HTTP_PORT} ${FEIRA_WORKERS}
          ${FEIRA_MODULES_DIR} ${FEIRA_MONGO_URI} ${FEIRA_REDIS}
          ${FEIRA_KAFKA_BROKERS} ${FEIRA_STREAM_PORT} ${FEIRA_DASHBOARD_DIR}' \
    < "$FEIRA_CONF_TEMPLATE" > "$FEIRA_NGINX_DIR/nginx.conf"

exec nginx -p "$FEIRA_NGINX_DIR" -c "$FEIRA_NGINX_DIR/nginx.conf" \
    -e stderr -g 'daemon off;'
