# sparkfleet: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INVENTORY ?= inventories/demo
LIMIT ?= spark-lab
LAB := $(BIN)/python lab/sparkfleet_lab.py
# The repository as the collection sparkfleet.fleet (a committed link back to the root: galaxy.yml, ansible.cfg).
COLLECTION := collections/ansible_collections/sparkfleet/fleet
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv prereqs images lab-up lab-down lab-status status demo demo-run lint sanity unit molecule integration test test-gpu clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt requirements-lab.txt
	@command -v $(PYTHON) >/dev/null || { echo "sparkfleet: $(PYTHON) not found: install Python 3.10 or newer"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt -r requirements-lab.txt
	touch $@

venv: $(STAMP) ## Create .venv with the pinned controller, lab and test toolchain

prereqs:
	@command -v docker >/dev/null || { echo "sparkfleet: docker not found: install Docker Engine (apt-get install docker.io)"; exit 2; }
	@docker info >/dev/null 2>&1 || { echo "sparkfleet: the Docker engine does not answer: start it (systemctl start docker) and retry"; exit 2; }
	@command -v ssh >/dev/null || { echo "sparkfleet: ssh not found: apt-get install openssh-client"; exit 2; }

images: venv prereqs ## Build the lab images (debootstrap + docker import, no registry)
	$(LAB) images

lab-up: images ## Start the demo lab's hosts
	$(LAB) up --inventory $(INVENTORY)

lab-down: venv ## Remove the demo lab's hosts and network
	$(LAB) down --inventory $(INVENTORY)

lab-status: venv
	$(LAB) status --inventory $(INVENTORY)

status: venv ## The fleet's status now, read-only: a table; non-zero when a host is unhealthy or drifted
	bin/sparkfleet-status -i $(INVENTORY)/hosts.yml -l $(LIMIT)

demo: lab-up demo-run ## Build the demo lab and run site.yml on it: serving and verified

demo-run: venv
	@rc=0; $(BIN)/ansible-playbook site.yml -i $(INVENTORY)/hosts.yml -l $(LIMIT) || rc=$$?; \
	if [ -f reports/latest/fleet-report.md ]; then \
	  echo; echo "== what each host now serves, and how it did (reports/latest/fleet-report.md, .html)"; \
	  cat reports/latest/fleet-report.md; fi; \
	if [ -f reports/gateway-endpoint.txt ]; then \
	  echo; echo "== the one URL a class uses (key: the vault variable sparkfleet_gateway_api_key)"; \
	  cat reports/gateway-endpoint.txt; fi; \
	if [ -f reports/prometheus-endpoint.txt ]; then \
	  echo; echo "== the lab's metrics and alerts (docs/metrics.md)"; cat reports/prometheus-endpoint.txt; fi; \
	if [ -f reports/latest/fleet-report.md ]; then \
	  echo; echo "== planned vs serving: $$(tail -n 1 reports/latest/fleet-report.md | tr -d '*')"; fi; \
	echo; echo "== the fleet's status now (make status; docs/status.md)"; \
	bin/sparkfleet-status -i $(INVENTORY)/hosts.yml -l $(LIMIT) || { s=$$?; [ $$rc -ne 0 ] || rc=$$s; }; exit $$rc

lint: venv ## yamllint (strict), ansible-lint (production), ruff, mypy
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	$(BIN)/ruff check . bin/sparkfleet-bench
	$(BIN)/ruff format --check plugins lab bench tests bin/sparkfleet-bench
	$(BIN)/mypy $(COLLECTION)/plugins/module_utils/sparkfleet lab bench tests
	$(BIN)/mypy $(COLLECTION)/plugins/modules

# The collection as Galaxy ships it (built, unpacked into a temporary ansible_collections/sparkfleet/fleet):
# ansible-test sanity, validate-modules included (tests/sanity/run.py; PyPI needed, Galaxy not).
sanity: venv ## ansible-test sanity on the built collection (validate-modules, pylint, pep8, import, ...)
	$(BIN)/python tests/sanity/run.py

unit: venv ## pytest unit tests (fixtures, no lab needed)
	$(BIN)/pytest tests/unit bench/test_bench.py -q

integration: images ## pytest tests against the real stand-in server and the lab
	$(BIN)/pytest tests/integration -q

# Scenarios run three at a time (SPARKFLEET_MOLECULE_JOBS=1: one after another), each with its whole output in
# .cache/molecule/<scenario>.log; a line says when each starts and ends, and when one fails its failed tasks are
# printed last, so that the end of a long CI log says which task failed and why (molecule/shared/run_scenarios.py).
MOLECULE_JOBS ?= $(or $(SPARKFLEET_MOLECULE_JOBS),3)
molecule: images ## Molecule scenarios: create, prepare, check, converge, idempotence, verify, destroy
	$(BIN)/python molecule/shared/run_scenarios.py --jobs $(MOLECULE_JOBS) $(if $(wildcard $(STAGE_TIMES)),--times $(STAGE_TIMES))

# The lab images (debootstrap, wheel downloads, docker save: mostly waiting on the network and the disk) build
# beside the checks, which need none of them: lint (its output in .cache/lint.log, printed when it fails) beside
# unit then sanity, two at a time on two cores. Then the integration tests and the Molecule scenarios share three
# slots (molecule/shared/run_scenarios.py: the longest first, each job's output in its own log under .cache/): a lab
# job keeps less than half a core busy and spends the rest waiting, which the other slots recover. The integration
# tests are three jobs (pytest markers, tests/integration/conftest.py): the tests on the one shared converged host,
# the rollout on its own fleet lab, and the rest; the three together are every test of tests/integration.
# Every stage is timed and the table of the stages' wall times is printed at the end, pass or fail (a benchmark
# figure: lab/stage_times.py; docs/testing.md keeps the record).
STAGE_TIMES := .cache/stage-times.tsv
TIMED = $(BIN)/python lab/stage_times.py run $(STAGE_TIMES)
INTEGRATION_JOBS := --job "integration-served=$(BIN)/pytest tests/integration -q -m served" \
	--job "integration-fleet=$(BIN)/pytest tests/integration -q -m fleet" \
	--job "integration-rest=$(BIN)/pytest tests/integration -q -m 'not served and not fleet'"
test: venv prereqs ## Everything CI runs
	@mkdir -p .cache; rm -f $(STAGE_TIMES); \
	trap 'echo; echo "== make test: each stage'"'"'s wall time"; $(BIN)/python lab/stage_times.py table $(STAGE_TIMES)' EXIT; \
	echo "== lab images, built in the background (log: .cache/images.log)"; \
	$(TIMED) "images (background)" -- $(LAB) images > .cache/images.log 2>&1 & images=$$!; \
	echo "== lint, beside unit and sanity (log: .cache/lint.log)"; \
	$(TIMED) lint -- $(MAKE) --no-print-directory lint > .cache/lint.log 2>&1 & lint=$$!; \
	for stage in unit sanity; do \
	  $(TIMED) $$stage -- $(MAKE) --no-print-directory $$stage || { kill $$lint $$images 2>/dev/null; wait; exit 1; }; \
	done; \
	wait $$lint || { cat .cache/lint.log; echo "sparkfleet: lint failed (above)"; kill $$images 2>/dev/null; wait; exit 1; }; \
	echo "== lint passed"; \
	echo "== waiting for the lab images"; \
	wait $$images || { cat .cache/images.log; echo "sparkfleet: building the lab images failed (above)"; exit 1; }; \
	tail -n 3 .cache/images.log; \
	$(TIMED) "integration + molecule ($(MOLECULE_JOBS) at a time)" -- $(BIN)/python molecule/shared/run_scenarios.py \
	  --jobs $(MOLECULE_JOBS) --times $(STAGE_TIMES) $(INTEGRATION_JOBS)

# The hardware suite (tests/gpu, marker gpu): skipped where nvidia-smi finds no GPU. It needs no venv: on a GPU
# machine it runs under the python3 that has PyTorch and transformers (lab/gpu/gpu_run.sh installs the rest).
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
test-gpu: ## Hardware suite on a real NVIDIA GPU (skipped without one): detection, a real server, the benchmark
	$(GPU_PYTHON) -m pytest tests/gpu/test_wheels.py tests/gpu/test_detection.py tests/gpu/test_gpu_metrics.py \
	  tests/gpu/test_benchmark.py tests/gpu/test_ansible_stages.py -q

clean: lab-down ## Remove the lab and caches (keeps the venv)
	rm -rf .cache reports lab/.state
