#!/usr/bin/env bash
# `make dlq-replay TOPIC=<topic>.dlq [TO=<topic>] [STACK=run|test]`:
# re-publishes a dead letter topic's messages to the topics they came from
# (or to TO), on the brokers of the stack (FEIRA_KAFKA_BROKERS wins).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

topic=${1:-}
to=${2:-}
[ -n "$topic" ] || die "usage: make dlq-replay TOPIC=<topic>.dlq [TO=<topic>] [STACK=run|test]"
case $topic in
    *.dlq) ;;
    *) die "TOPIC=$topic is not a dead letter topic (<topic>.dlq)" ;;
esac

stack_env "${STACK:-run}"
say "replaying $topic on $KAFKA_BROKERS${to:+ to $to}"
FEIRA_KAFKA_BROKERS=$KAFKA_BROKERS exec "$FEIRA_BUILD/workers/dlq-replay" \
    -t "$topic" ${to:+-o "$to"}
