# Shared by Feira's scripts: paths, the ports of each stack, messages.
# Sourced, not run.

FEIRA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FEIRA_BUILD=$FEIRA_ROOT/build
FEIRA_VAR=$FEIRA_ROOT/var
FEIRA_BIN=$FEIRA_BUILD/bin
FEIRA_VENV=$FEIRA_BUILD/venv
FEIRA_MODULES_DIR=${FEIRA_MODULES_DIR:-$FEIRA_BUILD/modules}
KAFKA_LIBS=$FEIRA_BUILD/kafka/libs

say()  { printf 'feira: %s\n' "$*" >&2; }
die()  { printf 'feira: error: %s\n' "$*" >&2; exit 1; }

# stack_env NAME: the ports and directories of the stack NAME.
#   run   what `make run` starts (nginx on 127.0.0.1:8080)
#   test  what `make test` starts, on other ports, beside a running `make run`
#         (ports shifted by FEIRA_TEST_PORT_OFFSET, default 10000)
#   bench what `make bench` starts (FEIRA_BENCH_PORT_OFFSET, default 2000)
# FEIRA_MONGO_URI, FEIRA_REDIS and FEIRA_KAFKA_BROKERS name existing servers;
# a dependency named that way is not started.
stack_env() {
    STACK=$1
    case $STACK in
        run)  off=0 ;;
        test) off=${FEIRA_TEST_PORT_OFFSET:-10000} ;;
        bench) off=${FEIRA_BENCH_PORT_OFFSET:-2000} ;;
        *)    die "unknown stack '$STACK' (run, test or bench)" ;;
    esac

    STACK_DIR=$FEIRA_VAR/$STACK
    HTTP_PORT=$((8080 + off))
    STREAM_PORT=$((8081 + off))
    REDIS_PORT=$((6390 + off))
    MONGO_PORT=$((27027 + off))
    KAFKA_PORT=$((9092 + off))
    KAFKA_CONTROLLER_PORT=$((9093 + off))
    SMTP_PORT=$((1025 + off))
    MAILPIT_HTTP_PORT=$((8025 + off))
    NOTIFY_PORT=$((9101 + off))
    PAYMENT_PORT=$((9102 + off))
    STRIPE_PORT=$((12111 + off))
    ANALYTICS_PORT=$((9103 + off))

    EXTERNAL_MONGO=${FEIRA_MONGO_URI:-}
    EXTERNAL_REDIS=${FEIRA_REDIS:-}
    EXTERNAL_KAFKA=${FEIRA_KAFKA_BROKERS:-}

    MONGO_URI=${EXTERNAL_MONGO:-mongodb://127.0.0.1:$MONGO_PORT/feira}
    REDIS_ADDR=${EXTERNAL_REDIS:-127.0.0.1:$REDIS_PORT}
    KAFKA_BROKERS=${EXTERNAL_KAFKA:-127.0.0.1:$KAFKA_PORT}

    export STACK STACK_DIR HTTP_PORT STREAM_PORT REDIS_PORT MONGO_PORT \
           KAFKA_PORT KAFKA_CONTROLLER_PORT MONGO_URI REDIS_ADDR KAFKA_BROKERS \
           STRIPE_PORT NOTIFY_PORT PAYMENT_PORT ANALYTICS_PORT
}

# wait_port HOST PORT SECONDS
wait_port() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# pid_alive PIDFILE
pid_alive() {
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# stop_pid NAME PIDFILE: SIGTERM, then SIGKILL after 20 s
stop_pid() {
    local pid i
    if ! pid_alive "$2"; then
        rm -f "$2"
        return 0
    fi
    pid=$(cat "$2")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$1 (pid $pid) did not stop in 20 s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$2"
    say "stopped $1"
}
