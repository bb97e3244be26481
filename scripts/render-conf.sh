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
export FEIRA_WORKERS=${4:-auto}
export FEIRA_MODULES_DIR
export FEIRA_CONF_DIR=$FEIRA_ROOT/conf
export FEIRA_MONGO_URI=${MONGO_URI:?}
export FEIRA_REDIS=${REDIS_ADDR:?}
export FEIRA_KAFKA_BROKERS=${KAFKA_BROKERS:?}

mkdir -p "$FEIRA_NGINX_DIR/tmp" "$FEIRA_NGINX_DIR/logs" \
         "$FEIRA_NGINX_DIR/conf.d" "$FEIRA_NGINX_DIR/server.d"
envsubst '${FEIRA_NGINX_DIR} ${FEIRA_HTTP_PORT} ${FEIRA_WORKERS}
          ${FEIRA_MODULES_DIR} ${FEIRA_CONF_DIR} ${FEIRA_MONGO_URI}
          ${FEIRA_REDIS} ${FEIRA_KAFKA_BROKERS}' \
    < "$1" > "$FEIRA_NGINX_DIR/nginx.conf"
