#!/usr/bin/env bash
# Confinement (issue 12): each thread kind of `kairos run` (vCPU, timer,
# main event loop) runs under its own seccomp allow-list. The test-only
# KAIROS_TEST_SECCOMP_VIOLATION=KIND makes that thread call getpgrp(2),
# which no list allows, right after it confined itself: kairos must stop
# with exit 6 and one line naming the call and the thread, not run on
# silently. KAIROS_TEST_SECCOMP_VIOLATION=vcpu-ioctl makes a vCPU thread
# ask for KVM_CREATE_VCPU, an ioctl off its list (only KVM_RUN and the few
# its exits need pass): the line names ioctl and the request. A control
# boot with security.seccomp false and the same trigger runs to the
# guest's power-off: the stop is the filter's doing. A virtio device's
# thread (issue 10) is tried with a drive attached. All runs share one
# emulated machine (inside.sh).
source "$(dirname "$0")/lib.sh"
require_kvm

write_config vm.json 1 256 "$BASE_CMDLINE kairos.init=report"
# The control also needs no capability (no priority windows): its stats
# show the drop to nothing, which seccomp being off does not change.
write_config off.json 1 256 "$BASE_CMDLINE kairos.init=report" "$KAIROS_TEST_INITRAMFS" \
	'"security": {"seccomp": false}, "outsourcing": {"window": {"policy": "off"}}'

truncate -s 1M data.img
write_config drive.json 1 256 "$BASE_CMDLINE kairos.init=report" "$KAIROS_TEST_INITRAMFS" \
	'"drives": [{"id": "data", "path": "data.img"}]'

cat >inside.sh <<SCRIPT
#!/bin/sh
# Inside the KVM machine: one run per thread kind, then the control.
for kind in vcpu timer loop vcpu-ioctl; do
	KAIROS_TEST_SECCOMP_VIOLATION=\$kind timeout --kill-after=10 300 \
		"$KAIROS_BIN" run vm.json --stats \$kind.json </dev/null >\$kind.out 2>\$kind.err
	echo "\$kind-exit=\$?"
done
KAIROS_TEST_SECCOMP_VIOLATION=device timeout --kill-after=10 300 \
	"$KAIROS_BIN" run drive.json --stats device.json </dev/null >device.out 2>device.err
echo "device-exit=\$?"
KAIROS_TEST_SECCOMP_VIOLATION=vcpu timeout --kill-after=10 300 \
	"$KAIROS_BIN" run off.json --stats off-stats.json </dev/null >off.out 2>off.err
echo "off-exit=\$?"
SCRIPT
chmod +x inside.sh
run_in_kvm ./inside.sh
cp out.txt host.txt

# expect_violation KIND THREAD [CALL]: kairos stopped with exit 6 and
# said, on stderr, that THREAD made the forbidden CALL (as the line names
# it; default "111 (getpgrp)").
expect_violation() {
	local kind=$1 thread=$2 call=${3:-"111 (getpgrp)"} line
	if grep -q "^$kind-exit=6$" host.txt; then
		pass "$kind: exit code 6"
	else
		fail "$kind: $(grep "^$kind-exit=" host.txt || echo 'no exit code'), expected 6"
	fi
	line="kairos: seccomp: forbidden system call $call on thread $thread (tid "
	if grep -qF "$line" "$kind.err" && grep -q '); stopping$' "$kind.err"; then
		pass "$kind: kairos said '$(grep -F "$line" "$kind.err")'"
	else
		fail "$kind: kairos did not name $call on $thread; stderr: $(tail -n 5 "$kind.err" 2>/dev/null)"
	fi
	if grep -q "guest powered off" "$kind.err" 2>/dev/null; then
		fail "$kind: the guest ran on to its power-off"
	fi
}

expect_violation vcpu kairos-vcpu0
expect_violation timer kairos-timer
expect_violation loop kairos-main
# KVM_CREATE_VCPU is _IO(KVMIO, 0x41): 0xae41.
expect_violation vcpu-ioctl kairos-vcpu0 "16 (ioctl, request 0xae41)"
expect_violation device kairos-blk-data

if grep -q "^off-exit=0$" host.txt && grep -q "guest powered off" off.err; then
	pass "security.seccomp false: the same trigger is harmless, the guest powered off"
else
	fail "security.seccomp false: $(grep '^off-exit=' host.txt || true) $(tail -n 3 off.err 2>/dev/null)"
fi
expect_confined off.json off-stats.json
cp off.out out.txt 2>/dev/null || true  # a guest console, for finish's diagnostics
cp off.err err.txt 2>/dev/null || true
finish
