#!/usr/bin/env bash
# Installs what Feira needs and the machine lacks, idempotently:
# Debian packages, the Kafka broker jars (Maven), FerretDB (Go) and the
# Python test tools.  Each step says what it does; a second run is quick.
#
# usage: scripts/install-deps.sh [all|packages|kafka|ferretdb|mailpit|stripe-mock|python|browser|bench|fuzz]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

APT_PACKAGES=(
    nginx nginx-dev libnginx-mod-stream libpcre2-dev zlib1g-dev libssl-dev
    libjansson-dev libjwt-dev libhiredis-dev libmongoc-dev libbson-dev
    librdkafka-dev libcurl4-openssl-dev libargon2-dev
    redis-server libcmocka-dev pkg-config gettext-base curl wrk
    prometheus valgrind
)

install_packages() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
            || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "Debian packages: all present"
        return
    fi
    say "Debian packages: installing ${missing[*]}"
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    # no service is started by the packages: the stacks run their own
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
        $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_kafka() {
    if [ -f "$KAFKA_LIBS/.complete" ]; then
        say "Kafka broker jars: present"
        return
    fi
    command -v mvn >/dev/null || die "Maven (mvn) is needed for the Kafka broker jars"
    command -v java >/dev/null || die "Java 17 is needed to run Kafka"
    say "Kafka broker jars: resolving with Maven (kafka/pom.xml)"
    rm -rf "$KAFKA_LIBS"
    mkdir -p "$KAFKA_LIBS"
    mvn -q -B -f "$FEIRA_ROOT/kafka/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS"
    touch "$KAFKA_LIBS/.complete"
}

install_ferretdb() {
    if [ -x "$FEIRA_BIN/ferretdb" ] \
       && [ "$FEIRA_BIN/ferretdb" -nt "$FEIRA_ROOT/scripts/ferretdb/go.sum" ] \
       && [ "$FEIRA_BIN/ferretdb" -nt "$FEIRA_ROOT/scripts/ferretdb/main.go" ]; then
        say "FerretDB: present"
        return
    fi
    command -v go >/dev/null || die "Go is needed to build FerretDB"
    say "FerretDB: building v1 from the Go module proxy (scripts/ferretdb)"
    mkdir -p "$FEIRA_BIN"
    (cd "$FEIRA_ROOT/scripts/ferretdb" && go build -o "$FEIRA_BIN/ferretdb" .)
}

MAILPIT_VERSION=v1.27.11

# Mailpit: the SMTP server (with an HTTP API) of the notification tests
install_mailpit() {
    # `mailpit version` asks GitHub; a stamp says which version was built
    if [ -x "$FEIRA_BIN/mailpit" ] \
       && [ "$(cat "$FEIRA_BIN/.mailpit-version" 2>/dev/null)" = "$MAILPIT_VERSION" ]; then
        say "Mailpit: present"
        return
    fi
    command -v go >/dev/null || die "Go is needed to build Mailpit"
    say "Mailpit: building $MAILPIT_VERSION from the Go module proxy"
    mkdir -p "$FEIRA_BIN"
    GOBIN=$FEIRA_BIN GOFLAGS=-mod=mod go install \
        "github.com/axllent/mailpit@$MAILPIT_VERSION" \
        || die "Mailpit did not build (go install github.com/axllent/mailpit@$MAILPIT_VERSION)"
    echo "$MAILPIT_VERSION" > "$FEIRA_BIN/.mailpit-version"
}

STRIPE_MOCK_VERSION=v0.203.0

# stripe-mock: Stripe's own stand-in for its API, for the payment worker
install_stripe_mock() {
    if [ -x "$FEIRA_BIN/stripe-mock" ] \
       && [ "$(cat "$FEIRA_BIN/.stripe-mock-version" 2>/dev/null)" = "$STRIPE_MOCK_VERSION" ]; then
        say "stripe-mock: present"
        return
    fi
    command -v go >/dev/null || die "Go is needed to build stripe-mock"
    say "stripe-mock: building $STRIPE_MOCK_VERSION from the Go module proxy"
    mkdir -p "$FEIRA_BIN"
    GOBIN=$FEIRA_BIN GOFLAGS=-mod=mod go install \
        "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION" \
        || die "stripe-mock did not build (go install github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION)"
    echo "$STRIPE_MOCK_VERSION" > "$FEIRA_BIN/.stripe-mock-version"
}

install_python() {
    local req=$FEIRA_ROOT/tests/requirements.txt
    if [ -x "$FEIRA_VENV/bin/python" ] && [ "$FEIRA_VENV/.stamp" -nt "$req" ]; then
        say "Python test tools: present"
        return
    fi
    say "Python test tools: installing into build/venv (tests/requirements.txt)"
    python3 -m venv "$FEIRA_VENV"
    "$FEIRA_VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
    touch "$FEIRA_VENV/.stamp"
}

BENCH_PACKAGES=(libnginx-mod-http-js libnginx-mod-nchan wrk)

install_bench() {
    APT_PACKAGES=("${BENCH_PACKAGES[@]}")
    install_packages
}

# the browser of the dashboard page's test (driven by playwright-core)
BROWSER_PACKAGES=(chromium)

install_browser() {
    APT_PACKAGES=("${BROWSER_PACKAGES[@]}")
    install_packages
}

FUZZ_PACKAGES=(clang libclang-rt-14-dev)

install_fuzz() {
    APT_PACKAGES=("${FUZZ_PACKAGES[@]}")
    install_packages
}

what=${1:-all}
case $what in
    packages) install_packages ;;
    kafka)    install_kafka ;;
    ferretdb) install_ferretdb ;;
    mailpit)  install_mailpit ;;
    stripe-mock) install_stripe_mock ;;
    python)   install_python ;;
    browser)  install_browser ;;
    bench)    install_bench ;;
    fuzz)     install_fuzz ;;
    all)      install_packages; install_kafka; install_ferretdb; install_mailpit
              install_stripe_mock; install_python; install_browser ;;
    *)        die "usage: $0 [all|packages|kafka|ferretdb|mailpit|stripe-mock|python|browser|bench|fuzz]" ;;
esac
