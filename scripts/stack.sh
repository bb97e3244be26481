#!/usr/bin/env bash
# Starts and stops one stack of Feira's local services, each with its state
# and logs under var/<stack>/<service>, tracked by pid files.
#
# usage: scripts/stack.sh start|stop|status run|test [service...]
# services, in start order: redis mongo kafka nginx (and, for run: mailpit
# notify, the notification worker with a local mail server, stripe, Stripe's
# stripe-mock, payments, the payment worker against it, and analytics, the
# analytics worker); the test stack starts stripe too
# (scripts/test-integration.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ALL=(redis mongo kafka nginx)

start_redis() {
    [ -z "$EXTERNAL_REDIS" ] || { say "redis: using $EXTERNAL_REDIS"; return; }
    local d=$STACK_DIR/redis
    mkdir -p "$d"
    if pid_alive "$d/redis.pid"; then say "redis: already running"; return; fi
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$d" \
        --appendonly yes --save '' --daemonize yes \
        --pidfile "$d/redis.pid" --logfile "$d/redis.log"
    wait_port 127.0.0.1 "$REDIS_PORT" 20 || die "redis did not start, see $d/redis.log"
    say "redis: 127.0.0.1:$REDIS_PORT"
}

start_mongo() {
    [ -z "$EXTERNAL_MONGO" ] || { say "mongo: using $EXTERNAL_MONGO"; return; }
    local d=$STACK_DIR/mongo
    mkdir -p "$d/data"
    if pid_alive "$d/ferretdb.pid"; then say "mongo: already running"; return; fi
    setsid "$FEIRA_BIN/ferretdb" -listen "127.0.0.1:$MONGO_PORT" -dir "$d/data" \
        >>"$d/ferretdb.log" 2>&1 < /dev/null &
    echo $! > "$d/ferretdb.pid"
    wait_port 127.0.0.1 "$MONGO_PORT" 30 || die "FerretDB did not start, see $d/ferretdb.log"
    say "mongo (FerretDB): 127.0.0.1:$MONGO_PORT"
}

start_kafka() {
    [ -z "$EXTERNAL_KAFKA" ] || { say "kafka: using $EXTERNAL_KAFKA"; return; }
    local d=$STACK_DIR/kafka
    mkdir -p "$d"
    if pid_alive "$d/kafka.pid"; then say "kafka: already running"; return; fi
    cat > "$d/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$d/data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
    cat > "$d/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$d/kafka.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=WARN
PROPS
    local java=(java -Xms256m -Xmx512m -XX:+UseSerialGC
                -Dlog4j.configuration="file:$d/log4j.properties"
                -cp "$KAFKA_LIBS/*")
    if [ ! -f "$d/data/meta.properties" ]; then
        local id
        id=$(python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22])')
        "${java[@]}" kafka.tools.StorageTool format --cluster-id="$id" \
            -c "$d/server.properties" >>"$d/kafka.log" 2>&1 \
            || die "kafka storage format failed, see $d/kafka.log"
    fi
    setsid "${java[@]}" kafka.Kafka "$d/server.properties" \
        >>"$d/kafka.out" 2>&1 < /dev/null &
    echo $! > "$d/kafka.pid"
    wait_port 127.0.0.1 "$KAFKA_PORT" 60 || die "Kafka did not start, see $d/kafka.log"
    say "kafka: 127.0.0.1:$KAFKA_PORT (KRaft, controller $KAFKA_CONTROLLER_PORT)"
    # the topics of kafka/topics/ (auto-creation stays on for the others)
    "$FEIRA_ROOT/scripts/create-topics.sh" "127.0.0.1:$KAFKA_PORT"
}

start_nginx() {
    local d=$STACK_DIR/nginx
    if pid_alive "$d/nginx.pid"; then say "nginx: already running"; return; fi
    "$FEIRA_ROOT/scripts/render-conf.sh" "$FEIRA_ROOT/conf/nginx.conf" "$d" "$HTTP_PORT"
    nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" \
        || die "nginx did not start, see $d/logs/error.log"
    wait_port 127.0.0.1 "$HTTP_PORT" 10 || die "nginx does not listen, see $d/logs/error.log"
    say "nginx: http://127.0.0.1:$HTTP_PORT, location ingest tcp://127.0.0.1:$STREAM_PORT"
}

# the local mail server, for the notification worker of `make run`
start_mailpit() {
    local d=$STACK_DIR/mailpit
    mkdir -p "$d"
    if pid_alive "$d/mailpit.pid"; then say "mailpit: already running"; return; fi
    setsid "$FEIRA_BIN/mailpit" --smtp "127.0.0.1:$SMTP_PORT" \
        --listen "127.0.0.1:$MAILPIT_HTTP_PORT" --database "$d/mailpit.db" \
        --disable-version-check --smtp-disable-rdns \
        >>"$d/mailpit.log" 2>&1 < /dev/null &
    echo $! > "$d/mailpit.pid"
    wait_port 127.0.0.1 "$SMTP_PORT" 20 || die "Mailpit did not start, see $d/mailpit.log"
    say "mailpit: smtp 127.0.0.1:$SMTP_PORT, web http://127.0.0.1:$MAILPIT_HTTP_PORT"
}

start_notify() {
    local d=$STACK_DIR/notification-worker
    mkdir -p "$d"
    if pid_alive "$d/worker.pid"; then say "notification-worker: already running"; return; fi
    FEIRA_KAFKA_BROKERS=$KAFKA_BROKERS FEIRA_MONGO_URI=$MONGO_URI \
    FEIRA_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" FEIRA_SMTP_STARTTLS=off \
    FEIRA_WORKER_LISTEN="127.0.0.1:$NOTIFY_PORT" \
    FEIRA_NOTIFY_TEMPLATES="$FEIRA_ROOT/workers/notification-worker/templates" \
        setsid "$FEIRA_BUILD/workers/notification-worker" \
        >>"$d/worker.log" 2>&1 < /dev/null &
    echo $! > "$d/worker.pid"
    wait_port 127.0.0.1 "$NOTIFY_PORT" 20 \
        || die "the notification worker did not start, see $d/worker.log"
    say "notification-worker: /healthz and /metrics on 127.0.0.1:$NOTIFY_PORT"
}

# Stripe's own API stand-in (github.com/stripe/stripe-mock), plain HTTP
start_stripe() {
    local d=$STACK_DIR/stripe-mock
    mkdir -p "$d"
    if pid_alive "$d/stripe-mock.pid"; then say "stripe-mock: already running"; return; fi
    [ -x "$FEIRA_BIN/stripe-mock" ] || die "stripe-mock is missing: scripts/install-deps.sh stripe-mock"
    # its HTTPS port too, beside the HTTP one: two stacks never share one
    setsid "$FEIRA_BIN/stripe-mock" -http-addr "127.0.0.1:$STRIPE_PORT" \
        -https-addr "127.0.0.1:$((STRIPE_PORT + 1))" \
        >>"$d/stripe-mock.log" 2>&1 < /dev/null &
    echo $! > "$d/stripe-mock.pid"
    wait_port 127.0.0.1 "$STRIPE_PORT" 30 || die "stripe-mock did not start, see $d/stripe-mock.log"
    say "stripe-mock: http://127.0.0.1:$STRIPE_PORT"
}

# the payment worker of `make run`, against stripe-mock (PayPal: none)
start_payments() {
    local d=$STACK_DIR/payment-worker
    mkdir -p "$d"
    if pid_alive "$d/worker.pid"; then say "payment-worker: already running"; return; fi
    FEIRA_KAFKA_BROKERS=$KAFKA_BROKERS FEIRA_MONGO_URI=$MONGO_URI \
    FEIRA_REDIS=$REDIS_ADDR FEIRA_WORKER_LISTEN="127.0.0.1:$PAYMENT_PORT" \
    FEIRA_STRIPE_API_BASE="http://127.0.0.1:$STRIPE_PORT" \
    FEIRA_STRIPE_SECRET_KEY=sk_test_123 \
        setsid "$FEIRA_BUILD/workers/payment-worker" \
        >>"$d/worker.log" 2>&1 < /dev/null &
    echo $! > "$d/worker.pid"
    wait_port 127.0.0.1 "$PAYMENT_PORT" 40 \
        || die "the payment worker did not start, see $d/worker.log"
    say "payment-worker: /healthz and /metrics on 127.0.0.1:$PAYMENT_PORT"
}

# the analytics worker of `make run`
start_analytics() {
    local d=$STACK_DIR/analytics-worker
    mkdir -p "$d"
    if pid_alive "$d/worker.pid"; then say "analytics-worker: already running"; return; fi
    FEIRA_KAFKA_BROKERS=$KAFKA_BROKERS FEIRA_MONGO_URI=$MONGO_URI \
    FEIRA_WORKER_LISTEN="127.0.0.1:$ANALYTICS_PORT" \
        setsid "$FEIRA_BUILD/workers/analytics-worker" \
        >>"$d/worker.log" 2>&1 < /dev/null &
    echo $! > "$d/worker.pid"
    wait_port 127.0.0.1 "$ANALYTICS_PORT" 40 \
        || die "the analytics worker did not start, see $d/worker.log"
    say "analytics-worker: /healthz and /metrics on 127.0.0.1:$ANALYTICS_PORT"
}

stop_one() {
    case $1 in
        redis) stop_pid redis "$STACK_DIR/redis/redis.pid" ;;
        mongo) stop_pid ferretdb "$STACK_DIR/mongo/ferretdb.pid" ;;
        kafka) stop_pid kafka "$STACK_DIR/kafka/kafka.pid" ;;
        nginx) stop_pid nginx "$STACK_DIR/nginx/nginx.pid" ;;
        mailpit) stop_pid mailpit "$STACK_DIR/mailpit/mailpit.pid" ;;
        notify) stop_pid notification-worker \
                    "$STACK_DIR/notification-worker/worker.pid" ;;
        stripe) stop_pid stripe-mock "$STACK_DIR/stripe-mock/stripe-mock.pid" ;;
        payments) stop_pid payment-worker \
                    "$STACK_DIR/payment-worker/worker.pid" ;;
        analytics) stop_pid analytics-worker \
                    "$STACK_DIR/analytics-worker/worker.pid" ;;
        *)     die "unknown service '$1'" ;;
    esac
}

pidfile_of() {
    case $1 in
        redis) echo "$STACK_DIR/redis/redis.pid" ;;
        mongo) echo "$STACK_DIR/mongo/ferretdb.pid" ;;
        kafka) echo "$STACK_DIR/kafka/kafka.pid" ;;
        nginx) echo "$STACK_DIR/nginx/nginx.pid" ;;
        mailpit) echo "$STACK_DIR/mailpit/mailpit.pid" ;;
        notify) echo "$STACK_DIR/notification-worker/worker.pid" ;;
        stripe) echo "$STACK_DIR/stripe-mock/stripe-mock.pid" ;;
        payments) echo "$STACK_DIR/payment-worker/worker.pid" ;;
        analytics) echo "$STACK_DIR/analytics-worker/worker.pid" ;;
    esac
}

[ $# -ge 2 ] || die "usage: $0 start|stop|status run|test [service...]"
cmd=$1
stack_env "$2"
shift 2
services=("$@")
if [ ${#services[@]} -eq 0 ]; then
    services=("${ALL[@]}")
    # the whole marketplace also runs its workers (tests start their own)
    [ "$STACK" != run ] || services+=(mailpit notify stripe payments analytics)
fi

case $cmd in
    start)
        mkdir -p "$STACK_DIR"
        for s in "${services[@]}"; do "start_$s"; done
        ;;
    stop)
        for ((i = ${#services[@]} - 1; i >= 0; i--)); do stop_one "${services[$i]}"; done
        ;;
    status)
        rc=0
        for s in "${services[@]}"; do
            if pid_alive "$(pidfile_of "$s")"; then
                say "$s: running (pid $(cat "$(pidfile_of "$s")"))"
            else
                say "$s: stopped"; rc=1
            fi
        done
        exit $rc
        ;;
    *) die "usage: $0 start|stop|status run|test [service...]" ;;
esac
