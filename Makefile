# Campus e-wallet: terminals, authorizer and simulator.
# The two commands: `make demo` and `make test` (both install what they need).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION) -X campuspay/terminal/daemon.Version=$(VERSION)
BINS     := bin/authorizer bin/terminald bin/terminald-nocam bin/hwsim
FUZZTIME ?= 30s
# The short fuzz pass inside `make test`.
TEST_FUZZTIME ?= 2s
TEST_TIMEOUT  ?= 12m

.PHONY: all build deps test vet unit fuzz fuzz-short bench demo demo-live clean package

all: build

deps:
	@bash scripts/deps.sh

build:
	@mkdir -p bin
	@bash scripts/build-wasm.sh
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./server/cmd/authorizer ./terminal/cmd/terminald ./hwsim/cmd/hwsim
	# Card-tap and shower boxes: terminald without the camera, so no OpenCV.
	$(GO) build -tags nocamera -ldflags "$(LDFLAGS)" -o bin/terminald-nocam ./terminal/cmd/terminald

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	# gocv Mats are C memory: the camera loop must close every one it makes.
	$(GO) test -count=1 -tags matprofile -run NoMatLeak ./terminal/device/camera/
	$(GO) test -count=1 -tags nocamera -run NoCamera ./terminal/daemon/

fuzz-short:
	@bash scripts/fuzz.sh $(TEST_FUZZTIME)

test: deps vet build unit fuzz-short

fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

# LOAD_FLAGS: the short end-to-end load pass (README "Sizing a deployment").
LOAD_FLAGS ?= --terminals 100 --students 1000 --concurrency 256 --warmup 1s --duration 3s

bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./...
	bin/hwsim load --bin bin --broker mosquitto,embedded $(LOAD_FLAGS)

demo: deps build
	bin/hwsim demo --bin bin

demo-live: deps build
	bin/hwsim demo --bin bin --live

# Debian packages of the authorizer and terminald (nfpm as a Go library):
# dist/campuspay-{authorizer,terminald}_VERSION_ARCH.deb.
package: build
	$(GO) run ./scripts/mkdeb --bin bin --root . --out dist --version $(VERSION)

clean:
	rm -rf bin
