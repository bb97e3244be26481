#!/usr/bin/env bash
# `make bench` (bench-notifications): notifications per second through the
# notification worker into Mailpit and a push receiver, consumer lag
# drained.  Runs on the test stack's ports (FEIRA_TEST_PORT_OFFSET), from
# clean data, and stops that stack at the end.  Writes docs/benchmarks.md.
# usage: bench/notifications.sh [events]
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
stack_env test

stop_stack() { "$FEIRA_ROOT/scripts/stack.sh" stop test mongo kafka || true; }
trap stop_stack EXIT

stop_stack
rm -rf "$STACK_DIR"
"$FEIRA_ROOT/scripts/stack.sh" start test mongo kafka

cd "$FEIRA_ROOT"
"$FEIRA_VENV/bin/python" bench/notifications.py "$@"
