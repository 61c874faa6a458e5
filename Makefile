# todo-mcp. `make help` lists the targets.
SHELL := /usr/bin/env bash
GO    ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: dev
dev: ## run the authserver and the mcpserver together on the embedded defaults (Ctrl-C stops both)
	@scripts/dev.sh

.PHONY: build
build: ## build both binaries into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/authserver ./cmd/mcpserver

.PHONY: test
test: ## run every test with -race, against SQLite and PostgreSQL
	@scripts/test.sh

.PHONY: lint
lint: ## gofmt, go vet, staticcheck, and go mod tidy leaving no diff
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@cp go.mod /tmp/todo-mcp-go.mod.$$$$ && cp go.sum /tmp/todo-mcp-go.sum.$$$$ && \
	  $(GO) mod tidy && \
	  if ! diff -q go.mod /tmp/todo-mcp-go.mod.$$$$ >/dev/null || ! diff -q go.sum /tmp/todo-mcp-go.sum.$$$$ >/dev/null; then \
	    echo "go mod tidy changed go.mod or go.sum: commit the result"; rm -f /tmp/todo-mcp-go.*.$$$$; exit 1; fi; \
	  rm -f /tmp/todo-mcp-go.*.$$$$

.PHONY: bench
bench: ## run the benchmarks (figures go to docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: migrate
migrate: ## apply database migrations to DATABASE_URL (or the default SQLite file)
	$(GO) run ./cmd/authserver migrate

.PHONY: clean
clean: ## remove build output
	rm -rf bin
