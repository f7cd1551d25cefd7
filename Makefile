# The targets a newcomer needs are `make run` (the daemon with every external
# service simulated) and `make test`. `make help` lists the rest.

GO      ?= go
PKG     := github.com/efm-go/efm
VERSION ?= 0.1.0-dev
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null)
DATE    := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X $(PKG)/internal/buildinfo.Version=$(VERSION) \
           -X $(PKG)/internal/buildinfo.Commit=$(COMMIT) \
           -X $(PKG)/internal/buildinfo.Time=$(DATE)
CMDS    := $(notdir $(wildcard cmd/*))
FUZZTIME ?= 10s

.PHONY: help build run test bench fuzz dist package lint clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build every binary into bin/
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

run: build ## run the daemon with the built-in sandbox of simulated services
	bin/integrasjonspunkt run --sandbox --data ./data

test: ## vet, then every test with the race detector, then the 1 GiB tests without it
	$(GO) vet ./...
	$(GO) test -race -timeout 30m ./...
	$(GO) test -count=1 -run 'TestDPO_1GiBAttachment|TestUpload1GB_MemoryBounded|TestDPF_100MiBOverREST' ./integrasjonspunkt/e2e/ ./integrasjonspunkt/api/

.PHONY: gobench
bench: build ## cost per message beside its baselines, README Figures (cmd/efm-bench; COUNT=3, BENCHFLAGS=-quick)
	bin/efm-bench -count $${COUNT:-3} $(BENCHFLAGS)

gobench: ## go test benchmarks (medians: run with COUNT=6 and compare with benchstat)
	$(GO) test -run '^$$' -bench . -benchmem -count $${COUNT:-1} -timeout 60m ./...

fuzz: ## a short run of every fuzz target (FUZZTIME=10s each)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

dist: ## release binaries: linux/amd64, linux/arm64, windows/amd64 (cgo through mingw)
	@mkdir -p dist
	CGO_ENABLED=1 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/integrasjonspunkt-linux-amd64 ./cmd/integrasjonspunkt
	CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/integrasjonspunkt-linux-arm64 ./cmd/integrasjonspunkt
	CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/integrasjonspunkt-windows-amd64.exe ./cmd/integrasjonspunkt

.PHONY: msi
msi: ## Windows installer dist/*.msi (Debian's wixl and msitools, mingw for cgo)
	@mkdir -p dist
	CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/integrasjonspunkt-windows-amd64.exe ./cmd/integrasjonspunkt
	sh build/windows/msi.sh dist/integrasjonspunkt-windows-amd64.exe $(VERSION) dist/integrasjonspunkt-$(VERSION)-x64.msi

.PHONY: image
image: ## container image localhost/integrasjonspunkt:VERSION, built daemonless (Debian's buildah)
	@mkdir -p dist
	CGO_ENABLED=1 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/integrasjonspunkt-linux-amd64 ./cmd/integrasjonspunkt
	sh build/image/image.sh dist/integrasjonspunkt-linux-amd64 $(VERSION) localhost/integrasjonspunkt:$(VERSION)

NFPM ?= go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.43.0

package: ## .deb and .rpm for linux/amd64 (self-update defaults to notify there)
	@mkdir -p dist
	CGO_ENABLED=1 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/integrasjonspunkt-linux-amd64 ./cmd/integrasjonspunkt
	cd build/package && PKG_VERSION=$(VERSION) $(NFPM) package --packager deb --target ../../dist/
	cd build/package && PKG_VERSION=$(VERSION) $(NFPM) package --packager rpm --target ../../dist/

lint: ## gofmt and vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

clean: ## remove build output (never ./data)
	rm -rf bin dist
