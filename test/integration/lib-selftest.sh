#!/usr/bin/env bash
# lib.sh's in_kvm retries exactly once when the emulated machine itself
# died (with-kvm's exit 125 and its own message) or, when asked, when the
# guest triple-faulted, and never when COMMAND failed otherwise. No VM: a
# stub stands in for with-kvm and follows a plan, one outcome per call.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cat >"$scratch/with-kvm" <<'STUB'
#!/bin/sh
n=$(($(cat "$STUB_DIR/calls" 2>/dev/null || echo 0) + 1))
echo "$n" >"$STUB_DIR/calls"
case $(sed -n "${n}p" "$STUB_DIR/plan") in
died) echo "with-kvm: emulated machine stopped without COMMAND's exit status (qemu exit 0)" >&2; exit 125 ;;
setup) echo "with-kvm: emulated machine failed: cannot mount host root" >&2; exit 125 ;;
cmd125) echo "kairos: the command itself exited 125" >&2; exit 125 ;;
fail) echo "kairos: guest panicked" >&2; exit 3 ;;
triple) echo "kairos: guest triple fault: vCPU 0 triple-faulted (exit 4)" >&2; exit 4 ;;
ok) echo "KAIROS-GUEST run=ok"; exit 0 ;;
*) echo "stub: no plan for call $n" >&2; exit 99 ;;
esac
STUB
chmod +x "$scratch/with-kvm"

failures=0
# check PLAN EXPECTED_RC EXPECTED_CALLS [RETRY_TRIPLE_FAULT]
check() {
	local plan=$1 want_rc=$2 want_calls=$3 triple=${4:-0} got
	rm -f "$scratch/calls"
	tr ' ' '\n' <<<"$plan" >"$scratch/plan"
	got=$(cd "$scratch" && STUB_DIR=$scratch KAIROS_TEST_WITH_KVM=$scratch/with-kvm \
		KAIROS_TEST_RETRY_TRIPLE_FAULT=$triple \
		KAIROS_BIN=/bin/true KAIROS_SOURCE_DIR=$here/../.. KAIROS_TEST_KERNEL=none \
		KAIROS_TEST_INITRAMFS=none bash -c \
		'source "$1"; in_kvm /dev/null true >/dev/null; echo "$RC"' _ "$here/lib.sh")
	local calls
	calls=$(cat "$scratch/calls")
	if [ "$got" = "$want_rc" ] && [ "$calls" = "$want_calls" ]; then
		echo "lib-selftest: ok: plan '$plan': rc $got after $calls call(s)"
	else
		echo "lib-selftest: FAIL: plan '$plan': rc '$got' after $calls call(s)," \
		     "expected rc $want_rc after $want_calls"
		failures=$((failures + 1))
	fi
}

check "ok" 0 1
check "fail" 3 1
check "cmd125" 125 1           # COMMAND's own 125 is a verdict, not a machine death
check "died ok" 0 2
check "setup ok" 0 2
check "died fail" 3 2
check "died died ok" 125 2     # once only
check "triple ok" 4 1          # a triple fault is kairos' verdict ...
check "triple ok" 0 2 1        # ... unless the caller asks (run_guest does)
check "triple triple" 4 2 1    # once only
[ "$failures" -eq 0 ] || exit 1
echo "lib-selftest: all checks passed"
