#!/usr/bin/env bash
# Build check: conf/nginx.conf, with the freshly built modules loaded,
# passes `nginx -t`.  usage: scripts/check-conf.sh MODULES_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"

export FEIRA_MODULES_DIR=${1:?usage: $0 MODULES_DIR}
stack_env test
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
"$FEIRA_ROOT/scripts/render-conf.sh" "$FEIRA_ROOT/conf/nginx.conf" "$d" "$HTTP_PORT" 1
if ! out=$(nginx -t -q -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" 2>&1); then
    printf '%s\n' "$out" >&2
    die "nginx -t failed with the built modules"
fi
say "nginx -t: conf/nginx.conf is valid with the built modules"
