#!/usr/bin/env bash
# build: Release: the VMM, its tools and the unit tests build with
# -DCMAKE_BUILD_TYPE=Release under -Werror (issue 9). Optimisation turns on
# warnings the default build never sees (-Warray-bounds, -Wrestrict): this
# caught GCC 12's -Wrestrict on a string concatenation in base/seccomp.cpp.
# Builds in BUILD_DIR/release-check; the guest images are left out (no
# optimisation level changes them).
set -euo pipefail
source_dir=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:?usage: build-release.sh BUILD_DIR}/release-check

echo "build: Release in $build_dir (configure, then kairos, the bench tools and the unit tests)"
cmake -S "$source_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >"$build_dir.configure.log" 2>&1 ||
	{ cat "$build_dir.configure.log"; echo "build: Release: configure failed" >&2; exit 1; }
targets=(kairos kairos_unit_tests vmrpc-throughput boot-time-runner)
cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]}"
echo "build: Release: ${targets[*]} built with -Werror"
