# fleetops.codedeploy — `make test` and `make demo` each set up everything they need on a fresh Debian machine
# (as root): Debian packages, the controller virtualenv, the collection link, then run and tear down.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
COLLECTIONS := $(CURDIR)/$(VENV)/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/fleetops/codedeploy
APT_PACKAGES := openssh-server openssh-client sudo acl haproxy unzip git util-linux procps chromium
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(BIN):$(PATH)

.PHONY: test demo deps system-deps unit integration molecule sanity lint ee clean

test: deps
	@status=0; \
	$(MAKE) --no-print-directory unit || status=1; \
	$(MAKE) --no-print-directory integration || status=1; \
	$(MAKE) --no-print-directory molecule || status=1; \
	$(MAKE) --no-print-directory sanity || status=1; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory ee || status=1; \
	if [ $$status -ne 0 ]; then echo "make test: FAILED (see above)"; fi; exit $$status

demo: deps
	scripts/demo

deps: system-deps $(VENV)/.installed $(COLLECTION_LINK)

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: requirements.txt requirements-test.txt requirements-sanity.txt constraints.txt
	@test -x $(BIN)/python || { py=$$(scripts/find-python); echo "Creating $(VENV) with $$py"; $$py -m venv $(VENV); }
	$(BIN)/python -m pip install -q -r requirements-test.txt -c constraints.txt
	@touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@) && ln -sfn $(CURDIR) $@

unit: deps
	$(BIN)/pytest tests/unit -q

# Each test fleet is torn down by its fixture, even when tests fail. The integration and fault-injection (tests/faults)
# test files run on INTEGRATION_WORKERS pytest-xdist workers, each with its own fleet pool: much of a test's time is
# waiting on SSH, hooks and timeouts.
INTEGRATION_WORKERS ?= 2
integration: deps
	$(BIN)/pytest tests/integration tests/faults -q -n $(INTEGRATION_WORKERS) --dist loadfile --durations=15

molecule: deps
	cd extensions && $(BIN)/molecule test -s default

sanity: deps
	scripts/sanity --python 3.13

lint: deps
	$(BIN)/ansible-lint --offline -q roles playbooks extensions/molecule examples/awx

# The example AWX execution environment's build context (no image is built here), and the dependencies
# ansible-builder reads from the built collection: the runtime ones, no test tool.
ee: deps
	@scratch=$$(mktemp -d); trap 'rm -rf "$$scratch"' EXIT; \
	$(BIN)/ansible-builder create -f examples/awx/execution-environment.yml -c "$$scratch/context" >/dev/null; \
	test -s "$$scratch/context/_build/requirements.yml"; \
	$(BIN)/ansible-galaxy collection build . --output-path "$$scratch" >/dev/null; \
	$(BIN)/ansible-galaxy collection install "$$scratch"/fleetops-codedeploy-*.tar.gz -p "$$scratch/collections" --force \
	  >/dev/null 2>&1; \
	$(BIN)/ansible-builder introspect "$$scratch/collections" | tee "$$scratch/introspect"; \
	grep -q 'boto3' "$$scratch/introspect"; \
	if grep -Eiq 'moto|pytest|molecule|lint' "$$scratch/introspect"; then \
	  echo "ee: the collection's execution-environment requirements name a test tool"; exit 1; fi; \
	echo "ee: build context created, requirements are the runtime ones"

clean:
	-tests/fleet/fleet down
	rm -rf $(VENV) .state
