#!/usr/bin/env bash
# lint: clang-format: the C++ sources are formatted by .clang-format
# (STYLE.md: formatting is automatic). The C of kairos.ko, the ABI header
# and the guest tools follow the kernel's style instead (checkpatch), and
# are not listed. To fix a finding: clang-format -i FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang-format >/dev/null; then
	echo "SKIPPED: clang-format is not installed (apt-get install clang-format; scripts/build does)" >&2
	exit 77
fi

mapfile -d '' files < <(find base devices pvclock outsourcing vmm test/unit bench \
	-type f \( -name '*.cpp' -o -name '*.h' \) -print0 | sort -z)
echo "lint: $(clang-format --version) over ${#files[@]} files"
clang-format --dry-run --Werror "${files[@]}"
echo "lint: clang-format: clean"
