#!/usr/bin/env bash
# `make run` / `make stop`: the whole marketplace on this machine.
# usage: scripts/run.sh start|stop
set -euo pipefail
. "$(dirname "$0")/lib.sh"
stack_env run

case ${1:-start} in
start)
    if pid_alive "$STACK_DIR/nginx/nginx.pid"; then
        say "already running: http://127.0.0.1:$HTTP_PORT (make stop to stop it)"
        exit 0
    fi
    "$FEIRA_ROOT/scripts/stack.sh" start run
    say "waiting for http://127.0.0.1:$HTTP_PORT/readyz"
    for ((i = 0; i < 600; i++)); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/readyz"; then
            cat >&2 <<MSG

Feira is running.
  API          http://127.0.0.1:$HTTP_PORT   (/healthz, /readyz, /v1/...)
  MongoDB      $MONGO_URI
  Redis        $REDIS_ADDR
  Kafka        $KAFKA_BROKERS
  Mail (web)   http://127.0.0.1:$MAILPIT_HTTP_PORT   (what the notification worker sends)
  Worker       http://127.0.0.1:$NOTIFY_PORT/healthz   (notification-worker)
  Worker       http://127.0.0.1:$ANALYTICS_PORT/healthz   (analytics-worker)
  Dashboard    http://127.0.0.1:$HTTP_PORT/dashboard/   (providers sign in)
  state, logs  $STACK_DIR/<service>/
Stop it with: make stop
MSG
            exit 0
        fi
        sleep 0.1
    done
    curl -sS "http://127.0.0.1:$HTTP_PORT/readyz" >&2 || true
    die "not ready after 60 s; see $STACK_DIR/*/ for logs"
    ;;
stop)
    "$FEIRA_ROOT/scripts/stack.sh" stop run
    ;;
*)
    die "usage: $0 start|stop"
    ;;
esac
