#!/usr/bin/env bash
# The smallest supported guest boots to /init, sees its one vCPU and ~128 MiB,
# the host's wall-clock date (CMOS RTC), idles for 5 s and powers off with
# exit code 0. Meanwhile the main loop sleeps until something happens: no
# periodic tick (issue 9).
source "$(dirname "$0")/lib.sh"
require_kvm
require_jq

IDLE_S=5
write_config vm.json 1 128 "$BASE_CMDLINE kairos.init=run:/bin/sleep kairos.args=$IDLE_S"
run_guest vm.json
expect_rc 0
expect_stderr "guest powered off"
expect_value cpus 1
expect_between mem_kib $((128 * 1024 * 6 / 10)) $((128 * 1024))
expect_output "KAIROS-GUEST init-done"

# The guest reads the date from our RTC at boot; it printed it a few seconds
# (of emulated boot) before we look, so allow a generous window.
guest_date=$(guest_value date)
host_date=$(date -u +%s)
if [ -n "$guest_date" ] && [ $((host_date - guest_date)) -ge -5 ] && [ $((host_date - guest_date)) -le 120 ]; then
	pass "guest date $guest_date is within the boot time of host date $host_date"
else
	fail "guest date '$guest_date' is not near host date $host_date"
fi
if grep -q '"reason": "guest powered off"' stats.json; then pass "stats record the power-off"; else fail "stats.json: $(cat stats.json)"; fi
expect_value run "/bin/sleep exit=0"
# The default image carries the virtio-vsock driver, for a machine with a
# vsock device (vsock.sh boots one): this machine has none, so /init loads
# nothing and waits for nothing.
if grep -qa 'lib/modules/vsock/' "$KAIROS_TEST_INITRAMFS"; then
	pass "the default image carries the vsock driver"
else
	fail "no /lib/modules/vsock in the default image $KAIROS_TEST_INITRAMFS"
fi
if grep -q "^KAIROS-GUEST vsock-modules=" out.txt; then
	fail "a guest without a vsock device loaded the vsock driver: $(guest_value vsock-modules) modules"
else
	pass "no vsock driver loaded without a vsock device"
fi

# The main loop waits with no timeout: a wake-up that was only a timeout
# means a tick came back. Its wake-ups are the clock refresh (1 s), console
# output and the boot's few events; a 20 ms tick alone would add 50 per s.
expect_stat .event_loop.timeouts 0 0
runtime_ms=$(stat_value .runtime_ms)
wakeups=$(stat_value .event_loop.wakeups)
console=$(stat_value .console.transmitted_bytes)
log "main loop: $wakeups wake-ups in $runtime_ms ms ($console console bytes)"
# Seen: 224 in 19.6 s before the RTC, pacing and events merges, 385 in
# 14.5 s after them (where the 26 a second come from is not yet known). A
# 20 ms tick would add runtime_ms / 20 on top of them all.
expect_stat .event_loop.wakeups 1 $((runtime_ms / 20))
finish
