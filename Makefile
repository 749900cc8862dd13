# hookline — `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
PKGS  ?= ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_/%-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

.PHONY: dev
dev: ## run hookline locally: ingest on :8080, scheduler and drains in one process, embedded Redis
	$(GO) run ./cmd/hookline dev

.PHONY: test
test: lint redis-server ## lint, then every test under -race against real Redis (standalone and 3-node cluster)
	$(GO) test -race -count=1 -v -timeout 30m $(PKGS)

# redis-server: the tests start their own servers from it. Installed here when
# missing, so `make test` works on a fresh machine.
.PHONY: redis-server
redis-server: ## install redis-server if it is missing (apt-get or brew)
	@command -v redis-server >/dev/null 2>&1 && exit 0; \
	sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	if command -v apt-get >/dev/null 2>&1; then \
		echo "installing redis-server with apt-get"; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; \
	elif command -v brew >/dev/null 2>&1; then \
		echo "installing redis with brew"; brew install redis; \
	else \
		echo "redis-server is missing: install it (Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis)" >&2; exit 1; \
	fi

# cfn-lint (pip install cfn-lint) checks template.yaml, SAM transform
# included; it fails on errors and warnings, as go test ./deploy does when
# cfn-lint is on PATH. Rules the template ignores are explained there. It
# needs no AWS credentials: AWS_EC2_METADATA_DISABLED spares it boto's wait
# for the EC2 metadata service.
CFN_LINT       ?= cfn-lint
CFN_LINT_FLAGS ?= --non-zero-exit-code warning

.PHONY: lint
lint: ## gofmt, go vet (the bench/ module too), and cfn-lint on template.yaml when cfn-lint is installed
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	cd bench && $(GO) vet ./...
	@if command -v $(CFN_LINT) >/dev/null 2>&1; then \
		echo "$(CFN_LINT) $(CFN_LINT_FLAGS) template.yaml"; \
		AWS_EC2_METADATA_DISABLED=true $(CFN_LINT) $(CFN_LINT_FLAGS) template.yaml; \
	else \
		echo "lint: $(CFN_LINT) not found: template.yaml not linted (pip install cfn-lint)"; \
	fi

# BENCHFLAGS go to the black-box suite in bench/ (a module of its own, so
# that asynq stays out of go.mod): e.g. BENCHFLAGS='--only cold --n 5000';
# `cd bench && go run . --help` lists them.
BENCHFLAGS ?=

.PHONY: bench bench-quick
bench: redis-server ## engine benchmarks beside raw go-redis, then the black-box suite (bench/): hookline dev vs asynq and raw Redis, ratios
	$(GO) test -run '^$$' -bench 'Enqueue|Cycle' -benchtime 3000x ./internal/queue
	$(GO) test -run '^$$' -bench BytesPerItem -benchtime 1x ./internal/queue
	$(GO) test -run '^$$' -bench BacklogDrain -benchtime 20000x ./internal/drain
	cd bench && $(GO) run . $(BENCHFLAGS)

bench-quick: redis-server ## a small run of both: fewer engine iterations, the suite with --quick (about a minute)
	$(GO) test -run '^$$' -bench 'Enqueue|Cycle' -benchtime 300x ./internal/queue
	$(GO) test -run '^$$' -bench BacklogDrain -benchtime 2000x ./internal/drain
	cd bench && $(GO) run . --quick $(BENCHFLAGS)

FUZZTIME ?= 30s

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (default 30s) each
	@set -e; for pkg in $$($(GO) list ./...); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for fn in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
			echo "== $$pkg $$fn"; \
			$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# ---------------------------------------------------------------- build and deploy
#
# The three Lambda functions: Go on provided.al2023, arm64, one static binary
# named bootstrap each, with hookline.yaml beside it (HOOKLINE_CONFIG is
# /var/task/hookline.yaml). `sam build` calls build-<LogicalId> with
# ARTIFACTS_DIR set (BuildMethod: makefile in template.yaml).

FUNCTIONS    := ingest scheduler drain
BIN          ?= bin
SAM          ?= sam
CONFIG_FILE  := hookline.yaml
LAMBDA_GOENV := CGO_ENABLED=0 GOOS=linux GOARCH=arm64
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags='-s -w'

# lambda-artifact builds ./functions/$(1) into $(2)/bootstrap and copies the
# configuration file next to it.
define lambda-artifact
	@test -n '$(2)' || { echo 'lambda-artifact: no output directory (is ARTIFACTS_DIR set?)' >&2; exit 1; }
	mkdir -p '$(2)'
	$(LAMBDA_GOENV) $(GO) build $(LAMBDA_FLAGS) -o '$(2)/bootstrap' ./functions/$(1)
	cp $(CONFIG_FILE) '$(2)/hookline.yaml'
endef

.PHONY: build $(FUNCTIONS:%=build/%)
build: $(FUNCTIONS:%=build/%) ## cross-compile the functions (linux/arm64) to bin/<fn>/bootstrap (BIN=dir to change), hookline.yaml beside each

$(FUNCTIONS:%=build/%): build/%:
	$(call lambda-artifact,$*,$(BIN)/$*)

.PHONY: build-IngestFunction build-SchedulerFunction build-DrainFunction
build-IngestFunction: ## for sam build: ingest into ARTIFACTS_DIR
	$(call lambda-artifact,ingest,$(ARTIFACTS_DIR))

build-SchedulerFunction: ## for sam build: scheduler into ARTIFACTS_DIR
	$(call lambda-artifact,scheduler,$(ARTIFACTS_DIR))

build-DrainFunction: ## for sam build: drain into ARTIFACTS_DIR
	$(call lambda-artifact,drain,$(ARTIFACTS_DIR))

# sam local invoke runs the last `sam build`. ENV_JSON (default env.json,
# not committed; docs/DEPLOY.md shows one) is passed with --env-vars when it
# exists; INVOKE_FLAGS adds other options.
ENV_JSON     ?= env.json
INVOKE_FLAGS ?=
invoke_env   = $(if $(wildcard $(ENV_JSON)),--env-vars $(ENV_JSON))

.PHONY: invoke/ingest invoke/scheduler invoke/drain
invoke/ingest: ## sam local invoke IngestFunction with testdata/events/ingest-http-v2.json (and env.json)
	$(SAM) local invoke IngestFunction -e testdata/events/ingest-http-v2.json $(invoke_env) $(INVOKE_FLAGS)

invoke/scheduler: ## sam local invoke SchedulerFunction with testdata/events/scheduler-schedule.json (and env.json)
	$(SAM) local invoke SchedulerFunction -e testdata/events/scheduler-schedule.json $(invoke_env) $(INVOKE_FLAGS)

invoke/drain: ## sam local invoke DrainFunction with testdata/events/drain.json (and env.json)
	$(SAM) local invoke DrainFunction -e testdata/events/drain.json $(invoke_env) $(INVOKE_FLAGS)

# make deploy checks before it deploys: the template, samconfig.toml, the
# events, the docs' commands and hookline.yaml (go test ./deploy/..., which
# also runs the engine as the cache's user on a local redis-server and
# cfn-lint when installed), then hookline.yaml as the functions load it at
# init (hookline check). DEPLOY_FLAGS adds sam deploy options, such as
# --config-env or --no-confirm-changeset.
DEPLOY_FLAGS ?=

.PHONY: deploy deploy-check validate
deploy-check: redis-server ## the checks make deploy runs first: go test ./deploy/... and hookline check of hookline.yaml
	$(GO) test -count=1 ./deploy/...
	$(GO) run ./cmd/hookline check --config $(CONFIG_FILE)

deploy: deploy-check ## deploy-check, then sam build && sam deploy (settings in samconfig.toml; see docs/DEPLOY.md)
	$(SAM) build
	$(SAM) deploy $(DEPLOY_FLAGS)

validate: ## sam validate --lint
	$(SAM) validate --lint
