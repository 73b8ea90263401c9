# emconv — set-up, demo and tests on a fresh Debian 12 machine with Swift 6.
SHELL := /bin/bash
EMCONV_RELEASE := .build/release/emconv

.PHONY: setup build release demo test interop docs bench clean

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
	swift build --build-tests
	swift test
	bash scripts/interop.sh

interop: build
	bash scripts/interop.sh

# Regenerates the generated parts of README.md and formats.md (the supported-formats table).
docs: build
	bash scripts/gendocs.sh .build/debug/emconv

bench: release
	bash benchmarks/mib_convert.sh

clean:
	rm -rf .build out
