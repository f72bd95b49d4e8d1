#!/usr/bin/env bash
# reboot -f (reboot=k, through the i8042) ends kairos with 0; a kernel panic
# (panic=-1 resets at once) ends it with 3 and says why; the same banners
# typed in the guest's shell decide nothing (issue 12, #4: only the
# kernel's own console output, the UART's polled path, is watched). The
# --events file agrees: `stopped` with each reason, one `guest-panic` from
# the console for the real panic and none for the typed banner. halt -f
# (the kernel's "System halted", no ACPI) is named for what it is.
source "$(dirname "$0")/lib.sh"
require_kvm
require_jq

write_config reset.json 2 256 "$BASE_CMDLINE kairos.init=reboot"
run_guest reset.json
expect_rc 0
expect_stderr "guest reset"
expect_events reset

write_config panic.json 1 256 "$BASE_CMDLINE kairos.init=panic"
run_guest panic.json
expect_rc 3
expect_stderr "guest kernel panic"
expect_output "Kernel panic - not syncing"
expect_events guest-panic
expect_event_count guest-panic 1
panic_source=$(event_value '[.[] | select(.event == "guest-panic")][0].data.source')
if [ "$panic_source" = console ]; then
	pass "the guest-panic event names the console as its source"
else
	fail "the guest-panic event's source is '$panic_source', expected console"
fi
# stopped's message is the stop line's text, without "kairos: " and the code.
stop_text=$(tail -n 1 err.txt)
stop_text=${stop_text#kairos: }
stop_text=${stop_text% (exit *}
if [ "$(event_value '.[-1].data.message')" = "$stop_text" ]; then
	pass "stopped's message is the stop line's text"
else
	fail "stopped's message '$(event_value '.[-1].data.message')' is not the stop line '$(tail -n 1 err.txt)'"
fi

log "boot 3: a program prints the panic and halt banners, then reboots"
mv out.txt out-panic.txt
write_config typed.json 1 256 "$BASE_CMDLINE kairos.init=shell"
printf '%s\n' 'echo "Kernel panic - not syncing: typed by a user"' 'echo "reboot: System halted"' \
	'reboot -f' >typed.txt
run_guest_typing typed.json typed.txt
expect_rc 0
expect_output "Kernel panic - not syncing: typed by a user"
expect_stderr "guest reset"
expect_no_stderr "panic"
expect_no_stderr "halted"
expect_events reset
expect_event_count guest-panic 0

log "boot 4: halt -f, the kernel's own halt without ACPI"
mv out.txt out-typed.txt
write_config halt.json 1 256 "$BASE_CMDLINE kairos.init=run:/bin/busybox kairos.args=halt,-f"
run_guest halt.json
expect_rc 0
expect_output "reboot: System halted"
expect_stderr 'the guest halted its CPUs ("System halted": halt -f, or power-off without ACPI)'
expect_no_stderr "panic"
expect_events power-off
finish
