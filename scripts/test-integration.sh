#!/usr/bin/env bash
# The integration suite: starts the test stack (its own ports, beside a
# running `make run`), runs pytest against it, and stops it even on failure.
# usage: scripts/test-integration.sh [pytest arguments]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
stack_env test

stop_stack() { "$FEIRA_ROOT/scripts/stack.sh" stop test redis mongo kafka stripe || true; }
trap stop_stack EXIT

# a previous run may have been killed: start from clean data
stop_stack
rm -rf "$STACK_DIR"
"$FEIRA_ROOT/scripts/stack.sh" start test redis mongo kafka stripe

cd "$FEIRA_ROOT"
"$FEIRA_VENV/bin/python" -m pytest tests/integration "$@"
