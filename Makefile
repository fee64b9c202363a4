# bourse — one Makefile for the whole monorepo. Tools are pinned in tools/*/go.mod and installed into
# ./bin by scripts/tools.sh (cached per machine under ~/.cache/bourse-tools).
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Every Go module of the workspace (one per service plus pkg).
MODULES := $(shell go work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p')
GO_TEST_FLAGS ?=
BENCHTIME ?= 1s
CRASHES ?= 500
SEED ?=

.PHONY: help
help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: tools
tools: ## install pinned tools into ./bin (idempotent; a cold build takes ~15 min and prints progress)
	@scripts/tools.sh

.PHONY: generate
generate: ## regenerate pkg/gen from proto/ with buf
	@scripts/tools.sh buf protoc-gen-go protoc-gen-go-grpc
	@rm -rf pkg/gen
	./bin/buf generate

.PHONY: check-generated
check-generated: ## fail if the committed generated code is stale
	@scripts/check-generated.sh

.PHONY: docs
docs: ## rewrite the README's access tables from the services' auth policies
	@for m in risk matching discovery inference training-coordinator payment; do (cd services/$$m && UPDATE=1 go test -count=1 -run '^TestReadmeAccessTable$$' ./internal/grpcapi/ >/dev/null) || exit 1; done

.PHONY: lint
lint: ## go vet, gofmt, buf lint and buf breaking (against the previous commit)
	@scripts/tools.sh buf
	./bin/buf lint
	@# Generated clients must keep working: the protos may not break against the previous commit
	@# (BREAKING_AGAINST=<ref> compares with another), unless the package version changes.
	@against=$${BREAKING_AGAINST:-HEAD~1}; if git rev-parse -q --verify "$$against^{commit}" >/dev/null; then \
		./bin/buf breaking --against ".git#ref=$$(git rev-parse "$$against")"; \
	else echo "lint: buf breaking: $$against is not in this clone; nothing to compare with"; fi
	@unformatted=$$(gofmt -l $(MODULES)); if [[ -n "$$unformatted" ]]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./...); done

.PHONY: test
test: tools lint check-generated ## the one test command: tools, lint, unit tests with -race, integration tests with real Consul/Jaeger
	@for m in $(MODULES); do echo "== go test $$m"; (cd $$m && go test -race -count=1 -timeout 20m $(GO_TEST_FLAGS) ./...); done

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	@scripts/fuzz.sh $${FUZZTIME:-20s}

.PHONY: chaos
chaos: tools ## chaos test of matching + risk: SIGKILL at CRASHES random points (default 500), SEED=n repeats a run
	cd services/matching && BOURSE_CHAOS=1 CRASHES=$(CRASHES) SEED=$(SEED) go test -race -count=1 -timeout 6h -v -run '^TestChaos$$' ./test/

.PHONY: train-chaos
train-chaos: tools ## elastic training under chaos: SIGKILL a worker ROUNDS times (default 30) through one job, a fresh one after each
	cd services/training-coordinator && BOURSE_TRAINING_CHAOS_ROUNDS=$(or $(ROUNDS),30) go test -race -count=1 -timeout 1h -v -run '^TestElasticChaosKillsAndJoins$$' ./test/

.PHONY: payment-faults
payment-faults: tools ## deposits through payment against an acquirer that refuses and loses answers: RUNS deposits (default 1000), none charged twice
	cd services/payment && BOURSE_PAYMENT_FAULT_RUNS=$(or $(RUNS),1000) go test -race -count=1 -timeout 1h -v -run '^TestRandomFaultsNeverChargeTwice$$' ./test/

.PHONY: payment-chaos
payment-chaos: tools ## payment + acquirer + risk SIGKILLed alone and together under load, on SQLite then PostgreSQL: CRASHES points each (default 100 here), SEED=n repeats a run; invariants I1-I8 of the payment README
	cd services/payment && PAYMENT_CHAOS_CRASHES=$(if $(filter command line environment,$(origin CRASHES)),$(CRASHES),100) PAYMENT_CHAOS_SEED=$(SEED) go test -race -count=1 -timeout 8h -v -run '^TestPaymentChaos(Postgres)?$$' ./test/

.PHONY: acquirer-faults
acquirer-faults: tools ## the acquirer under random faults: RUNS keys (default 5000), each acted on exactly once
	cd services/payment && ACQUIRER_RUNS=$(or $(RUNS),5000) go test -race -count=1 -timeout 1h -v -run '^TestRandomFaultsNeverActTwice$$' ./internal/processor/acquirerproc/

.PHONY: train-mnist
train-mnist: ## train the 784-256-128-10 MLP on all of MNIST in one process (time to 97.5% test accuracy) and export it as model `mnist` into .run/models; ARGS= passes train-local flags
	cd services/training-coordinator && go run ./cmd/train-local --epochs 5 --target 0.975 --export-repo $(CURDIR)/.run/models --export-name mnist $(ARGS)

.PHONY: bench
bench: $(if $(BASELINE),,tools) ## Go benchmarks (-benchmem) and ghz load on loopback; BASELINE=<ref>: order path, baseline vs working tree
	@scripts/bench.sh $(BENCHTIME) # BASELINE, BENCHCOUNT, BENCH_FILTER reach it from make's command line

.PHONY: run
run: tools ## start Consul, Jaeger and every service locally; Ctrl-C stops them all
	@scripts/run.sh

.PHONY: demo
demo: ## on a running make run: the whole story with the bourse CLI (deposit, trade, withdraw, train, serve, infer)
	@scripts/demo.sh

.PHONY: build
build: ## build every service binary into ./bin
	@for m in $(MODULES); do for c in $$(cd $$m && go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./... 2>/dev/null); do go build -o bin/ $$c; done; done
