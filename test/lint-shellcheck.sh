#!/usr/bin/env bash
# lint: shellcheck: every shell script of the project is shellcheck-clean
# (settings in .shellcheckrc). The scripts are found by their first line or a
# .sh name, not listed, so that a new one is checked from its first commit.
# A finding that is not a bug is silenced where it is, with its reason:
# `# shellcheck disable=SCxxxx # why`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v shellcheck >/dev/null; then
	echo "SKIPPED: shellcheck is not installed (apt-get install shellcheck; scripts/build does)" >&2
	exit 77
fi

scripts=()
while IFS= read -r -d '' file; do
	case $file in
	*.sh) scripts+=("$file"); continue ;;
	esac
	case $(head -n 1 "$file" 2>/dev/null || true) in
	'#!/bin/sh' | '#!/bin/bash' | '#!/usr/bin/env bash' | '#!/usr/bin/env sh' | '#!/bin/busybox sh')
		scripts+=("$file") ;;
	esac
done < <(find . \( -path ./.git -o -path ./build -o -path './build-*' \) -prune -o \
	-type f ! -name '*.[ch]' ! -name '*.cpp' ! -name '*.json' ! -name '*.png' -print0 | sort -z)

echo "lint: shellcheck $(shellcheck --version | sed -n 's/^version: //p') over ${#scripts[@]} scripts"
shellcheck "${scripts[@]}"
echo "lint: shellcheck: clean"
