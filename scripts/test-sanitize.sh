#!/usr/bin/env bash
# The unit tests (XCTest + Swift Testing, including the end-to-end CLI tests, which then run the
# sanitized emconv) under AddressSanitizer, in their own build folder (.build-asan).
#
# Swift 6.3 on Linux supports --sanitize=address and thread; --sanitize=undefined is refused for
# Swift code ("unsupported option '-sanitize=undefined'"), and the package has no C code of its
# own beyond header shims, so UBSan has nothing to check here. Swift itself traps on overflow and
# out-of-bounds indexing in every build. Leak detection is off: Foundation keeps a few allocations
# alive by design. libhdf5's own out-of-bounds reads on damaged files are suppressed
# (fuzz/asan.supp). Extra arguments go to `swift test` (e.g. --filter DMTests).
set -uo pipefail
cd "$(dirname "$0")/.."
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="detect_leaks=0:suppressions=$(pwd)/fuzz/asan.supp${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
t0=$SECONDS
swift build --build-tests --build-path .build-asan --sanitize=address || exit 1
echo "test-sanitize: built in $((SECONDS - t0)) s"
swift test --skip-build --build-path .build-asan --sanitize=address "$@"
rc=$?
echo "test-sanitize: exit $rc after $((SECONDS - t0)) s"
exit $rc
