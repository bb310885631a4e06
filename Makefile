# Every target builds .venv itself, so each works on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STACK ?=
# Third-party schemas (Saleor's GraphQL, operators' CRDs) are not in this repository. Checks read them from
# CMP_SCHEMA_DIR: the caller's, else the team's contracts folder beside the clone when there is one; left
# empty, they read what `make schemas` fetched, or are skipped saying so (docs/contracts.md, "Schemas").
export CMP_SCHEMA_DIR ?= $(wildcard $(abspath ../shared/contracts))
# Bytecode is a cache like the others: without it every pytest process compiles and assertion-rewrites each
# test module again (~5 s of CPU per xdist worker), and every service or provider-host process the tests
# start compiles what changed. A PYTHONDONTWRITEBYTECODE in the caller's environment is not passed on.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: venv schemas preview preview-online test test-fast bench-tests lint bench-preview bench-saleor bench-gateway bench-provisioner chaos-provisioner clean images e2e

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all]'
	touch $(STAMP)

venv: $(STAMP)

## The third-party schemas from their upstream release tags into the cache directory, each checked against
## the sha256 pinned in infra/schema_sources.py (needs access to raw.githubusercontent.com).
schemas: $(STAMP)
	$(BIN)/python -m tools.schemas fetch

## The main job: offline preview of every stack (or STACK=dev), no cluster, no CLI, no credentials, no network.
preview: $(STAMP)
	$(BIN)/python -m tools.preview $(if $(STACK),--stack $(STACK),--all)

## The same preview, with image digests and Ragflow's registryPreflight asked of their registries.
preview-online: $(STAMP)
	$(BIN)/python -m tools.preview --online $(if $(STACK),--stack $(STACK),--all)

## The whole suite (unit, component, service, e2e, built images) over every core. Starts what it needs on
## loopback. PYTEST_ARGS adds pytest options, e.g. PYTEST_ARGS="--junitxml=build/test-results/junit.xml".
## One xdist worker per core plus one: the image tests mostly wait on file copies, not on a core.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: $(STAMP)
	bash .ci/system-deps.sh
	$(BIN)/ruff check .
	$(BIN)/python -m tools.schemas status
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

## The fast tier: every test that needs no server and no image build (docs/ci.md, "The two tiers").
test-fast: $(STAMP)
	bash .ci/system-deps.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n auto -m "not server" $(PYTEST_ARGS)

## Both tiers timed as the targets above run them, median of 3 runs each (docs/ci.md).
bench-tests: $(STAMP)
	$(BIN)/python tests/bench/bench_tests.py

lint: $(STAMP)
	$(BIN)/ruff check .

## zizmor on the workflows, checkov on every stack's rendered manifests, the Dockerfiles and the workflows, all
## offline, from their own virtualenv (checkov pins many libraries). A finding neither fixed nor accepted in
## .github/zizmor.yml or .github/checkov-skips.yaml fails (docs/ci.md, "Scanners").
SCAN_VENV := build/scan-venv
SCAN_STAMP := $(SCAN_VENV)/.installed
$(SCAN_STAMP): .github/scan-requirements.txt
	test -x $(SCAN_VENV)/bin/python || $(PY) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install -q -r .github/scan-requirements.txt
	touch $(SCAN_STAMP)

scan: $(STAMP) $(SCAN_STAMP) preview
	$(BIN)/python -m tools.scan --scan-bin $(SCAN_VENV)/bin

## The digest a registry resolves an image's tag to, to pin it: make base-digest [IMAGE=<repo>:<tag>]
## (default: images.baseImage's default). Needs the registry.
base-digest: $(STAMP)
	$(BIN)/python -m tools.images.base_digest $(IMAGE)
.PHONY: scan base-digest

bench-preview: $(STAMP)
	$(BIN)/python -m tools.preview.bench

## Saleor provider through the real provider host: requests of a first up, a no-op refresh, an up across token expiry, vs a login per operation.
bench-saleor: $(STAMP)
	$(BIN)/python tests/bench/bench_saleor.py

## Connector gateway vs one nginx hop vs direct: added p50/p99 at 200 calls/s, max calls/s (build/bench/gateway.json).
bench-gateway: $(STAMP)
	bash .ci/system-deps.sh
	$(BIN)/python tests/bench/bench_gateway.py

## Provisioner: JWS deliveries accepted/s into PostgreSQL beside its single-row commits/s (ratio), delivery -> CP p50/p99 (build/bench/provisioner.json).
bench-provisioner: $(STAMP)
	bash .ci/system-deps.sh
	$(BIN)/python tests/bench/bench_provisioner.py

## Provisioner under crashes: two replicas on one PostgreSQL (fsync on), kill -9 of a replica mid-batch and of
## PostgreSQL, the control plane down for a while; prints sent/accepted, instances, duplicates, recovery times.
chaos-provisioner: $(STAMP)
	bash .ci/system-deps.sh
	$(BIN)/python tests/bench/chaos_provisioner.py

## Service images with buildah into a loopback registry (Debian base from debootstrap, cached under build/images).
images: $(STAMP)
	bash .ci/system-deps.sh
	$(BIN)/python -m tools.images.build

## End-to-end smoke only (T1 order paid -> instance -> cancel, T6 tool call + tenant isolation), all on loopback.
e2e: $(STAMP)
	bash .ci/system-deps.sh
	$(BIN)/python -m pytest -q -m e2e tests/e2e

## After `pulumi up`: check the live stack, one line per check (docs/verify.md): make verify STACK=dev
## [VERIFY_ARGS="--url provisioner=http://127.0.0.1:8001 ..."]. The command exits 1 on any FAIL, 2 when it cannot
## start; make turns either into its own status 2, its last line naming the command's (`Error 1`: a FAIL).
verify: $(STAMP)
	$(if $(STACK),,$(error make verify needs STACK=<stack>, e.g. make verify STACK=dev))
	$(BIN)/python -m tools.verify --stack $(STACK) $(VERIFY_ARGS)
.PHONY: verify

clean:
	rm -rf build
