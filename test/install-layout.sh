#!/usr/bin/env bash
# `cmake --install` puts each file where Debian would (issue 11): the VMM,
# the docs and examples, the guest module's sources with the ABI header
# beside them, bash completion, and the man page when help2man is there.
# Usage: install-layout.sh BUILD_DIR
set -euo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
failures=0
expect_file() {
	if [ -e "$prefix/$1" ]; then
		echo "ok: $1"
	else
		echo "FAIL: $1 was not installed" >&2
		failures=$((failures + 1))
	fi
}

cmake --install "$build" --prefix "$prefix" >/dev/null
version=$("$prefix/bin/kairos" --version | cut -d' ' -f2)
expect_file bin/kairos
expect_file share/doc/kairos/README.md
expect_file share/doc/kairos/SECURITY.md
expect_file share/doc/kairos/examples/default.json
expect_file "src/kairos-$version/guest-kernel-module/Kbuild"
expect_file "src/kairos-$version/guest-kernel-module/vmrpc.c"
expect_file "src/kairos-$version/abi/kairos_abi.h"
expect_file share/bash-completion/completions/kairos
if command -v help2man >/dev/null; then
	expect_file share/man/man1/kairos.1
	# help2man escapes '-' as '\-' in the page.
	if ! grep -q 'check \[CONFIG.json\]' "$prefix/share/man/man1/kairos.1" ||
		! grep -q '\\-\\-log\\-level' "$prefix/share/man/man1/kairos.1"; then
		echo "FAIL: kairos.1 lacks the commands or options of --help" >&2
		failures=$((failures + 1))
	fi
fi
# The completion offers the commands.
words=$(bash -c 'source "$1"; COMP_WORDS=(kairos ch); COMP_CWORD=1; _kairos; echo "${COMPREPLY[*]}"' _ \
	"$prefix/share/bash-completion/completions/kairos")
if [ "$words" = check ]; then
	echo "ok: completion of 'kairos ch' is 'check'"
else
	echo "FAIL: completion of 'kairos ch' gave '$words'" >&2
	failures=$((failures + 1))
fi
# And the values of --log-level.
words=$(bash -c 'source "$1"; COMP_WORDS=(kairos run --log-level d); COMP_CWORD=3; _kairos; echo "${COMPREPLY[*]}"' _ \
	"$prefix/share/bash-completion/completions/kairos")
if [ "$words" = debug ]; then
	echo "ok: completion of 'kairos run --log-level d' is 'debug'"
else
	echo "FAIL: completion of 'kairos run --log-level d' gave '$words'" >&2
	failures=$((failures + 1))
fi
# And run's --events, a file name after it.
words=$(bash -c 'source "$1"; COMP_WORDS=(kairos run --ev); COMP_CWORD=2; _kairos; echo "${COMPREPLY[*]}"' _ \
	"$prefix/share/bash-completion/completions/kairos")
if [ "$words" = --events ]; then
	echo "ok: completion of 'kairos run --ev' is '--events'"
else
	echo "FAIL: completion of 'kairos run --ev' gave '$words'" >&2
	failures=$((failures + 1))
fi
# And after `kairos ctl SOCKET`, every command `kairos ctl --help` lists, and
# `kairos --help` names them all too: three lists that must not drift.
ctl_commands=$("$prefix/bin/kairos" ctl --help | sed -n '/^commands:/,/^$/s/^  \([a-z-]*\).*/\1/p' | sort | xargs)
words=$(bash -c 'source "$1"; COMP_WORDS=(kairos ctl vm.sock ""); COMP_CWORD=3; _kairos; echo "${COMPREPLY[*]}"' _ \
	"$prefix/share/bash-completion/completions/kairos" | tr ' ' '\n' | grep -v '^--' | sort | xargs)
if [ -n "$ctl_commands" ] && [ "$words" = "$ctl_commands" ]; then
	echo "ok: completion after 'kairos ctl SOCKET' is ctl's commands: $words"
else
	echo "FAIL: completion after 'kairos ctl SOCKET' gave '$words', ctl --help lists '$ctl_commands'" >&2
	failures=$((failures + 1))
fi
help_text=$("$prefix/bin/kairos" --help | tr -s ' \n' ' ')
for command in $ctl_commands; do
	if ! grep -qE "[ ,]${command}[ ,]" <<<"$help_text"; then
		echo "FAIL: kairos --help does not name the ctl command '$command'" >&2
		failures=$((failures + 1))
	fi
done
exit "$failures"
