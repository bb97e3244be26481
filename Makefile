# Feira: build the nginx modules, run the marketplace, run the tests.
#
#   make          build every module against Debian's nginx (build/)
#   make run      install what is missing, start the local stack on :8080
#   make stop     stop what `make run` started
#   make test     unit tests, then the integration suite on its own stack
#   make asan     the modules with AddressSanitizer and UBSan (build/asan/)
#   make workers  the C workers behind Kafka (build/workers/)
#   make dlq-replay TOPIC=feira.notifications.dlq [TO=topic] [STACK=run|test]
#   make bench    benchmarks, written to docs/benchmarks.md
#   make test-asan  the integration suite against the sanitizer build
#   make fuzz     the libFuzzer targets (FUZZ_SECONDS each, default 30)
#   make dashboard  the provider dashboard page (npm ci) into build/dashboard
#   make analytics-rebuild [STACK=run|test]  the analytics from the topics

SHELL       := /bin/bash
ROOT        := $(CURDIR)
BUILD       := $(ROOT)/build
NGINX_SRC   := /usr/share/nginx/src
CC_OPT      := -Wall -Wextra -Werror -O2 -g
ASAN_OPT    := -Wall -Wextra -Werror -O1 -g -fno-omit-frame-pointer \
               -fsanitize=address,undefined
ASAN_LD     := -fsanitize=address,undefined
MODULE_SRCS := config $(shell find nginx-modules -name '*.[ch]')
PYTEST_ARGS ?=

export PATH := $(BUILD)/bin:$(PATH)

.PHONY: all build asan deps run stop status test unit integration bench \
        test-asan fuzz clean

all: build

deps:
	@scripts/install-deps.sh all

# configure once per build directory; `make -f objs/Makefile <our .so>`
# recompiles only what changed.  The stream headers come with nginx-dev but
# not its sources: the stream core is Debian's libnginx-mod-stream, and
# only our modules are built (MODULES_SO lists them).
MODULES_SO   = $$(sed -n 's/^modules:[[:space:]]*//p' objs/Makefile \
                  | grep -v '^objs/ngx_stream_module\.so$$')

$(BUILD)/%/.configured: config
	@scripts/install-deps.sh packages
	@rm -rf $(BUILD)/$*
	@mkdir -p $(BUILD)
	cp -r $(NGINX_SRC) $(BUILD)/$*
	cd $(BUILD)/$* && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-stream=dynamic --add-dynamic-module=$(ROOT) \
	    --with-cc-opt="$(CFG_CC)" --with-ld-opt="$(CFG_LD)" > configure.log
	@touch $@

$(BUILD)/nginx/.configured: CFG_CC = $(CC_OPT)
$(BUILD)/asan/.configured: CFG_CC = $(ASAN_OPT)
$(BUILD)/asan/.configured: CFG_LD = $(ASAN_LD)

# the modules are installed into build/modules by rename, never rewritten in
# place: a running nginx keeps the files it mapped
$(BUILD)/nginx/.built: $(BUILD)/nginx/.configured $(MODULE_SRCS) conf/nginx.conf
	cd $(BUILD)/nginx && $(MAKE) -f objs/Makefile $(MODULES_SO)
	@mkdir -p $(BUILD)/modules
	@for so in $(BUILD)/nginx/objs/*.so; do \
	    cp $$so $(BUILD)/modules/.tmp.so && \
	    mv -f $(BUILD)/modules/.tmp.so $(BUILD)/modules/$${so##*/}; \
	done
	@scripts/check-conf.sh $(BUILD)/modules
	@touch $@

$(BUILD)/asan/.built: $(BUILD)/asan/.configured $(MODULE_SRCS)
	cd $(BUILD)/asan && $(MAKE) -f objs/Makefile $(MODULES_SO)
	@mkdir -p $(BUILD)/asan-modules
	@for so in $(BUILD)/asan/objs/*.so; do \
	    cp $$so $(BUILD)/asan-modules/.tmp.so && \
	    mv -f $(BUILD)/asan-modules/.tmp.so $(BUILD)/asan-modules/$${so##*/}; \
	done
	@touch $@

build: $(BUILD)/nginx/.built

asan: $(BUILD)/asan/.built

run: deps build
	@scripts/run.sh start

stop:
	@scripts/run.sh stop

status:
	@scripts/stack.sh status run || true

unit: $(BUILD)/nginx/.built
	@scripts/install-deps.sh packages
	$(MAKE) -C tests/unit BUILD=$(BUILD)/unit run

integration: deps build
	@scripts/test-integration.sh $(PYTEST_ARGS)

test: deps build
	$(MAKE) unit
	@scripts/test-integration.sh $(PYTEST_ARGS)
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

# the integration suite against the ASan/UBSan build of the modules and
# the workers; a sanitizer report in any nginx's or worker's log fails the
# test that ran it (the valgrind tests run the plain build: valgrind and
# ASan do not mix)
test-asan: deps build asan
	FEIRA_MODULES_DIR=$(BUILD)/asan-modules \
	FEIRA_WORKERS_DIR=$(BUILD)/asan/workers FEIRA_ASAN=1 \
	    scripts/test-integration.sh $(PYTEST_ARGS)

# every libFuzzer target for FUZZ_SECONDS (make test: 30 s each)
FUZZ_SECONDS ?= 30

fuzz:
	@scripts/install-deps.sh fuzz
	$(MAKE) -C fuzz run BUILD=$(BUILD)/fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

# speed, as ratios to nginx's own return 200 in the same run
bench: deps build
	@bench/run.sh

# the mixed scenario for 10 minutes, with the workers: the memory of nginx
# and of each worker must stay flat.  SOAK_PAIRS (50) pairs: as many as
# FerretDB serves on two cores without a queue that grows all along
SOAK_PAIRS ?= 50

soak: deps build
	@scripts/install-deps.sh bench
	BENCH_PAIRS=$(SOAK_PAIRS) BENCH_MIXED_SECONDS=600 \
	    $(BUILD)/venv/bin/python bench/mixed.py --soak

clean:
	rm -rf $(BUILD)/nginx $(BUILD)/asan $(BUILD)/unit $(BUILD)/fuzz

# the workers (workers/Makefile); `make` builds them with the modules
.PHONY: workers workers-asan dlq-replay bench bench-notifications soak \
        clean-workers

build: workers

asan: workers-asan

clean: clean-workers

workers:
	$(MAKE) -C workers BUILD=$(BUILD)/workers

workers-asan:
	$(MAKE) -C workers BUILD=$(BUILD)/asan/workers SAN=1

clean-workers:
	rm -rf $(BUILD)/workers $(BUILD)/asan/workers

dlq-replay: workers
	@scripts/dlq-replay.sh "$(TOPIC)" "$(TO)"

bench: bench-notifications

bench-notifications: deps build
	@bench/notifications.sh

# the provider dashboard page: npm ci in dashboard/, the static files and
# Chart.js into build/dashboard/ (served as /dashboard/)
.PHONY: dashboard analytics-rebuild

build: dashboard

dashboard:
	@scripts/install-dashboard.sh

# the analytics aggregates from nothing: stops the run stack's analytics
# worker, replays feira.requests, .chat, .payments and .reviews from their
# beginning (analytics-worker --rebuild), starts it again.  STACK=test for
# the test stack.
analytics-rebuild: workers
	@scripts/analytics-rebuild.sh "$(or $(STACK),run)"
