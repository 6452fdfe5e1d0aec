# Lifeboat. The two commands a newcomer needs: `make media` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/lifeboat-rescue/lifeboat/internal/version.Version=$(VERSION)
BIN     := bin/lifeboat
FUZZTIME ?= 20s

.PHONY: all deps build test test-quick vet cross bench bench-rescue fuzz rescue media clean

all: build

# Debian packages the tests need, installed only when missing; Go modules.
deps:
	./scripts/deps.sh
	$(GO) mod download

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lifeboat

vet:
	$(GO) vet ./...

# The engine, the image format and the CLI must build for Windows (vet
# also type-checks the tests that are not Linux-only).
cross:
	GOOS=windows GOARCH=amd64 $(GO) vet ./...

# The rescue environment: Debian's kernel (downloaded into out/cache, not
# installed) and a u-root initramfs with lifeboat as its uinit → out/rescue.
rescue:
	$(GO) run ./cmd/mkrescue -o out/rescue -cache out/cache -version $(VERSION) -v

# Everything: unit tests, real-filesystem round trips, fuzz seed corpora,
# and the QEMU boots of the rescue environment (qemu-tests/).
# Needs root for loop devices and mounts; installs missing packages first.
# cmd/testgate fails the run when a test fails or skips (a skip here hides
# a test that should have run).
# The packages with the most goroutines (the rescue environment, the text
# UI, the PXE server) run under the race detector instead.
RACE_PKGS = ./rescue/... ./tui/... ./pxe/...
test: deps vet cross build rescue
	{ LIFEBOAT_RESCUE=$(CURDIR)/out/rescue $(GO) test -json -timeout 40m $$($(GO) list ./... | grep -v -E '/(rescue|tui|pxe)(/|$$)'); \
	  LIFEBOAT_RESCUE=$(CURDIR)/out/rescue $(GO) test -json -race -timeout 20m $(RACE_PKGS); } | $(GO) run ./cmd/testgate

# Without the slow round trips, for development.
test-quick: vet
	$(GO) test -short ./...

# Speed and size against dd|zstd on a generated 2 GiB mixed disk.
bench: build
	$(GO) run ./cmd/lbbench -lifeboat $(BIN) -dir out/bench
	@echo "== what the writer's re-open after commit costs, against a whole backup of the same 256 MiB"
	$(GO) test -run '^$$' -bench 'Reopen|Backup256' -benchtime 5x ./images/
	$(MAKE) bench-rescue

# Rescue environment size and boot time under QEMU, directly and over PXE
# (median of 3).
bench-rescue: rescue
	LIFEBOAT_RESCUE=$(CURDIR)/out/rescue $(GO) test ./qemu-tests/ -run '^$$' -bench 'RescueBoot|PXEBoot' -benchtime 3x -timeout 30m

# Every fuzz target in the tree (found by scripts/fuzz.sh, not listed here)
# for FUZZTIME each; go test without -fuzz runs only their seed corpora.
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# The rescue media: a hybrid ISO (CD or stick, BIOS and UEFI) and a USB
# image (GPT: BIOS boot, ESP, LIFEBOAT-DATA) from the rescue bundle.
media: deps build rescue
	$(BIN) mkmedia iso -o out/lifeboat.iso --bundle out/rescue
	$(BIN) mkmedia usb -o out/lifeboat-usb.img --bundle out/rescue --yes
	@ls -l out/lifeboat.iso out/lifeboat-usb.img

clean:
	rm -rf bin out
