# hookline — `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
PKGS  ?= ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_/%-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

.PHONY: test
test: lint ## lint, then every test under -race against real Redis (standalone and 3-node cluster)
	$(GO) test -race -count=1 -v -timeout 30m $(PKGS)

.PHONY: lint
lint: ## gofmt and go vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

.PHONY: bench
bench: ## engine benchmarks on real Redis, each beside a raw go-redis baseline (prints ratios)
	$(GO) test -run '^$$' -bench . -benchtime 3000x ./shared/queue

.PHONY: fuzz
fuzz: ## run each fuzz target for 30s
	$(GO) test -run '^$$' -fuzz FuzzDecodeItem -fuzztime 30s ./shared/queue
	$(GO) test -run '^$$' -fuzz FuzzDecodeDead -fuzztime 30s ./shared/queue
