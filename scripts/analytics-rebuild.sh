#!/usr/bin/env bash
# `make analytics-rebuild [STACK=run|test]`: the analytics aggregates from
# nothing.  Stops the stack's analytics worker (when running), replays the
# topics from their beginning into fresh aggregates (analytics-worker
# --rebuild drops analytics_* first), and starts the worker again.  The
# numbers are those of what the topics still hold (their retention).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
stack_env "${1:-run}"

was_running=0
if pid_alive "$STACK_DIR/analytics-worker/worker.pid"; then
    was_running=1
    "$FEIRA_ROOT/scripts/stack.sh" stop "$STACK" analytics
fi

FEIRA_KAFKA_BROKERS=$KAFKA_BROKERS FEIRA_MONGO_URI=$MONGO_URI \
    "$FEIRA_BUILD/workers/analytics-worker" --rebuild

if [ "$was_running" = 1 ]; then
    "$FEIRA_ROOT/scripts/stack.sh" start "$STACK" analytics
fi
