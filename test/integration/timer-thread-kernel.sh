#!/usr/bin/env bash
# The timer thread's own wake-ups, on the kernel the guests run on: in the
# emulated machine of scripts/with-kvm that is Debian's 6.1, where io_uring
# hands a read of a timerfd to an io-wq worker (a normal-priority thread
# every expiry would wait for), while a newer host kernel reads a timerfd
# without blocking and shows nothing. So the unit test that checks the
# timer thread starts no such worker runs here, in that machine.
source "$(dirname "$0")/lib.sh"
require_kvm
: "${KAIROS_UNIT_TESTS:?}"
# shellcheck disable=SC2016 # expanded by the shell in the machine
run_in_kvm sh -c 'echo "KAIROS-GUEST kernel=$(uname -r)"; "$0" "$1"; echo "KAIROS-GUEST unit_rc=$?"' \
	"$KAIROS_UNIT_TESTS" "expiries wake the timer thread without an io_uring worker in between"
expect_rc 0
log "kernel: $(guest_value kernel)"
expect_value unit_rc 0
if grep -q "All tests passed" out.txt; then
	pass "the unit test ran and passed there"
else
	fail "the unit test did not report a pass: $(grep -m 1 -E 'FAILED|No test cases' out.txt || true)"
fi
finish
