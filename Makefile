# bookd — make help lists the targets.
GO       ?= go
BIN      ?= bin/bookd
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 30s

.DEFAULT_GOAL := help
.PHONY: help run build deps test vet generate check-generate bench bench-flash fuzz docker clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## run one node on the embedded store with demo data; the API is on :3000
	$(GO) run ./cmd/bookd serve

build: ## build a static bookd binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/bookd

deps: ## install the servers the tests start (PostgreSQL, Redis) when they are missing
	bash persistence/testserver/ensure-deps.sh

test: deps vet check-generate ## vet, check generated code, run every test with -race, run every benchmark once
	$(GO) test -race -count=1 -timeout 12m ./...
	$(GO) test -run='^$$' -bench=. -benchtime=1x -timeout 5m ./...

vet: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

generate: ## regenerate the protobuf Go in messages/ (buf and protoc-gen-go are pinned in go.mod)
	cd messages && $(GO) tool buf lint && $(GO) tool buf generate

check-generate: generate ## fail when regenerating changes a checked-in file
	@git diff --exit-code --stat -- messages || { echo "messages/: generated code is stale; run make generate and commit"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- messages); \
	if [ -n "$$untracked" ]; then echo "messages/: generated files not committed: $$untracked"; exit 1; fi

bench: ## run the benchmarks (5 rounds each; compare runs with benchstat)
	$(GO) test -run='^$$' -bench=. -benchmem -count=5 ./...

bench-flash: ## compare group commit, single commits and a database row lock on one hot resource (PostgreSQL)
	$(GO) run ./cmd/benchflash

fuzz: ## run every fuzz target for FUZZTIME (default 30s) each
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

docker: ## build the container image bookd:$(VERSION) (needs a Docker engine)
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t bookd:$(VERSION) .

clean: ## remove built binaries and the default data folder
	rm -rf bin data
