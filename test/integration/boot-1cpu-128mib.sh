#!/usr/bin/env bash
# The smallest supported guest boots to /init, sees its one vCPU and ~128 MiB,
# the host's wall-clock date (CMOS RTC), and powers off with exit code 0.
source "$(dirname "$0")/lib.sh"
require_kvm

write_config vm.json 1 128 "$BASE_CMDLINE kairos.init=report"
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
finish
