# emconv — set-up, demo and tests on a fresh Debian 12 machine with Swift 6.
SHELL := /bin/bash
EMCONV_RELEASE := .build/release/emconv

.PHONY: setup build release demo test interop docs bench clean install fuzz fuzz-smoke test-sanitize

setup:
	@bash scripts/setup.sh

build: setup
	swift build

release: setup
	swift build -c release

# The main job on the bundled fixtures: convert every fixture to NeXus and describe it.
demo: release
	@bash scripts/demo.sh $(EMCONV_RELEASE)

# Unit, acceptance (../shared/testdata when present) and end-to-end tests, then the interop
# check with independent readers (h5py + hdf5plugin in .venv).
test: setup
	bash scripts/venv.sh || [ $$? = 3 ]
	swift build --build-tests
	swift test
	bash scripts/interop.sh
	$(MAKE) fuzz-smoke

# Coverage-guided fuzzing (libFuzzer + ASan) of every reader and the metadata sidecar, each target
# for FUZZ_SECONDS, or for FUZZ_RUNS executions when given (`make fuzz FUZZ_RUNS=1000000`: no time
# limit; durations in fuzz/README.md). See scripts/fuzz.sh; findings in .build-fuzz/findings, exit 1 on any.
FUZZ_SECONDS ?= 300
FUZZ_RUNS ?=
fuzz: setup
	FUZZ_RUNS=$(FUZZ_RUNS) bash scripts/fuzz.sh $(FUZZ_SECONDS)

# The short run `make test` ends with: 20 s per target, fails on any crash, hang or bomb.
fuzz-smoke: setup
	FUZZ_JOBS=2 bash scripts/fuzz.sh 20

# The unit tests under AddressSanitizer (own build folder .build-asan; slow, not part of
# `make test`; Swift on Linux has no UBSan for Swift code, see the script).
test-sanitize: setup
	bash scripts/test-sanitize.sh

interop: build
	bash scripts/interop.sh

# Regenerates the generated parts of README.md and formats.md (the supported-formats table).
docs: build
	bash scripts/gendocs.sh .build/debug/emconv

bench: release
	bash benchmarks/mib_convert.sh

clean:
	rm -rf .build .build-fuzz .build-asan out

# Installs emconv, its man pages (generated from the argument parser) and shell completions.
PREFIX ?= /usr/local
install: release
	swift package --disable-sandbox generate-manual --multi-page
	install -d $(PREFIX)/bin $(PREFIX)/share/man/man1 $(PREFIX)/share/bash-completion/completions \
	  $(PREFIX)/share/zsh/site-functions $(PREFIX)/share/fish/vendor_completions.d
	install -m 755 $(EMCONV_RELEASE) $(PREFIX)/bin/emconv
	install -m 644 .build/plugins/GenerateManual/outputs/emconv/*.1 $(PREFIX)/share/man/man1/
	$(EMCONV_RELEASE) --generate-completion-script bash > $(PREFIX)/share/bash-completion/completions/emconv
	$(EMCONV_RELEASE) --generate-completion-script zsh > $(PREFIX)/share/zsh/site-functions/_emconv
	$(EMCONV_RELEASE) --generate-completion-script fish > $(PREFIX)/share/fish/vendor_completions.d/emconv.fish
	@echo "installed emconv, man pages and completions under $(PREFIX)"
