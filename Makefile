# Feira: build the nginx modules, run the marketplace, run the tests.
#
#   make          build every module against Debian's nginx (build/)
#   make run      install what is missing, start the local stack on :8080
#   make stop     stop what `make run` started
#   make test     unit tests, then the integration suite on its own stack
#   make asan     the modules with AddressSanitizer and UBSan (build/asan/)
#   make workers  the C workers behind Kafka (build/workers/)
#   make dlq-replay TOPIC=feira.notifications.dlq [TO=topic] [STACK=run|test]
#   make bench    benchmarks (not part of make test)

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

.PHONY: all build asan deps run stop status test unit integration check clean

all: build

deps:
	@scripts/install-deps.sh all

# configure once per build directory; `make -f objs/Makefile modules`
# recompiles only what changed
$(BUILD)/%/.configured: config
	@scripts/install-deps.sh packages
	@rm -rf $(BUILD)/$*
	@mkdir -p $(BUILD)
	cp -r $(NGINX_SRC) $(BUILD)/$*
	cd $(BUILD)/$* && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --add-dynamic-module=$(ROOT) \
	    --with-cc-opt="$(CFG_CC)" --with-ld-opt="$(CFG_LD)" > configure.log
	@touch $@

$(BUILD)/nginx/.configured: CFG_CC = $(CC_OPT)
$(BUILD)/asan/.configured: CFG_CC = $(ASAN_OPT)
$(BUILD)/asan/.configured: CFG_LD = $(ASAN_LD)

$(BUILD)/nginx/.built: $(BUILD)/nginx/.configured $(MODULE_SRCS) conf/nginx.conf
	$(MAKE) -C $(BUILD)/nginx -f objs/Makefile modules
	@scripts/check-conf.sh $(BUILD)/nginx/objs
	@touch $@

$(BUILD)/asan/.built: $(BUILD)/asan/.configured $(MODULE_SRCS)
	$(MAKE) -C $(BUILD)/asan -f objs/Makefile modules
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

clean:
	rm -rf $(BUILD)/nginx $(BUILD)/asan $(BUILD)/unit

# the workers (workers/Makefile); `make` builds them with the modules
.PHONY: workers workers-asan dlq-replay bench bench-notifications clean-workers

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
