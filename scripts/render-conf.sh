#!/usr/bin/env bash
# Renders an nginx configuration template of conf/ for one nginx instance.
#
# usage: scripts/render-conf.sh TEMPLATE NGINX_DIR HTTP_PORT [WORKERS]
# Reads MONGO_URI, REDIS_ADDR and KAFKA_BROKERS from the environment (see
# stack_env in lib.sh); only the ${FEIRA_*} names below are substituted, so
# nginx's own $variables pass through untouched.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 3 ] || die "usage: $0 TEMPLATE NGINX_DIR HTTP_PORT [WORKERS]"

export FEIRA_NGINX_DIR=$2
export FEIRA_HTTP_PORT=$3
# the TCP location ingest (stream): STREAM_PORT of the stack, or the next one
export FEIRA_STREAM_PORT=${FEIRA_STREAM_PORT:-${STREAM_PORT:-$(($3 + 1))}}
export FEIRA_WORKERS=${4:-auto}
export FEIRA_MODULES_DIR
export FEIRA_CONF_DIR=$FEIRA_ROOT/conf
# the provider dashboard page, installed by `make dashboard`
export FEIRA_DASHBOARD_DIR=${FEIRA_DASHBOARD_DIR:-$FEIRA_BUILD/dashboard}
export FEIRA_MONGO_URI=${MONGO_URI:?}
export FEIRA_REDIS=${REDIS_ADDR:?}
export FEIRA_KAFKA_BROKERS=${KAFKA_BROKERS:?}
# shared by every nginx of a stack, so that their tokens are interchangeable
export FEIRA_SECRETS_DIR=${FEIRA_SECRETS_DIR:-${STACK_DIR:-$FEIRA_NGINX_DIR}/secrets}

mkdir -p "$FEIRA_NGINX_DIR/tmp" "$FEIRA_NGINX_DIR/logs" \
         "$FEIRA_NGINX_DIR/conf.d" "$FEIRA_NGINX_DIR/server.d"
# secrets are made once, never committed
mkdir -p "$FEIRA_SECRETS_DIR"
chmod 700 "$FEIRA_SECRETS_DIR"
for f in jwt-secret admin-password stripe-webhook-secret; do
    if [ ! -s "$FEIRA_SECRETS_DIR/$f" ]; then
        (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > "$FEIRA_SECRETS_DIR/$f")
    fi
done

envsubst '${FEIRA_NGINX_DIR} ${FEIRA_SECRETS_DIR} ${FEIRA_HTTP_PORT} ${FEIRA_WORKERS}
          ${FEIRA_STREAM_PORT}
          ${FEIRA_MODULES_DIR} ${FEIRA_CONF_DIR} ${FEIRA_MONGO_URI}
          ${FEIRA_DASHBOARD_DIR}
          ${FEIRA_REDIS} ${FEIRA_KAFKA_BROKERS}' \
    < "$1" > "$FEIRA_NGINX_DIR/nginx.conf"
