#!/usr/bin/env bash
# kairos.ko in one boot (2 vCPUs, kvm-clock off): it loads, becomes the
# current clocksource, its /sys/kernel/kairos files look sane, the debug
# event arrives once per raise, a raise while the port is masked arrives at
# unmask (exactly once), rmmod (after switching clocksource) and a second
# insmod work, and the build for ABI version 999 refuses to load with one
# clear line. The guest side is /usr/bin/kairos-selftest (from
# guest/selftest/) in the image KAIROS_TEST_INITRAMFS_KAIROS
# (KAIROS_GUEST_INITRAMFS_KAIROS in CMake). The --events file says the same
# from the host's side: each registration and unregistration, at the
# address the guest reports.
source "$(dirname "$0")/lib.sh"
require_kvm
require_jq

require_kairos_image "kairos.ko"

# expect_kairos KEY VALUE: the selftest's "KAIROS-GUEST kairos-KEY=VALUE".
expect_kairos() { expect_value "kairos-$1" "$2"; }

# Unbinding kairos needs another high-resolution clocksource to fall back
# on. Without kvm-clock this guest has none (no calibrated TSC, no ACPI PM
# timer, no HPET) unless the tick is kept periodic (highres=off nohz=off),
# and that combination now and then stalled the boot before /init. So this
# test keeps kvm-clock and selects kairos by the clocksource= override; the
# virtual-timer test checks that kairos is current with kvm-clock off.
write_config vm.json 2 256 \
	"$BASE_CMDLINE clocksource=kairos kairos.init=run:/usr/bin/kairos-selftest kairos.modules=1" \
	"$KAIROS_TEST_INITRAMFS_KAIROS" '"clock": {"kvmclock": true}'
run_guest vm.json
expect_rc 0
expect_value module "kairos ok"
expect_value clocksource_after_modules kairos
expect_value run "/usr/bin/kairos-selftest exit=0"

# The module as loaded.
expect_kairos loaded yes
expect_kairos clocksource kairos
expect_kairos sysfs-missing none
expect_kairos abi-version 2
expect_kairos load-warnings 0
expect_kairos clock-increasing yes
expect_kairos stolen-lines 2
gpa=$(guest_value kairos-gpa)
if [[ "$gpa" =~ ^0x[0-9a-f]+$ ]] && [ $((gpa)) -ne 0 ] && [ $((gpa % 4096)) -eq 0 ]; then
	pass "shared_info_gpa=$gpa (non-zero, page aligned)"
else
	fail "shared_info_gpa is '$gpa', expected a non-zero page-aligned hex address"
fi
expect_between kairos-publish-count 1 1000000000

# Events: one raise, one delivery; a raise while masked waits for unmask.
expect_kairos debug-delta 1
expect_kairos masked-delta 0
expect_kairos unmask-delta 1

# Unload: refused while kairos is the current clocksource; unbinding it
# switches to another one, then rmmod works.
expect_kairos rmmod-while-current refused
expect_kairos unbind ok
after_unbind=$(guest_value kairos-clocksource-after-unbind)
if [ -n "$after_unbind" ] && [ "$after_unbind" != kairos ]; then
	pass "clocksource after unbind is $after_unbind"
else
	fail "clocksource after unbind is '$after_unbind', expected another than kairos"
fi
expect_kairos rmmod ok

# The build for ABI version 999 refuses to load, then kairos.ko loads again.
expect_kairos mismatch-insmod refused
expect_kairos mismatch-message found
expect_output "kairos: host ABI version 2, module built for 999"
expect_kairos reload ok
expect_kairos clocksource-after-reload kairos
expect_kairos reload-debug-delta 1

# --events: the load, the unload and the reload, as the host saw them.
expect_events power-off
expect_event_count vcpus-running 1
expect_event_count shared-info-registered 2
expect_event_count shared-info-unregistered 1
expect_event_count ring-registered 2
expect_event_count ring-unregistered 1
expect_event_count guest-panic 0
first_gpa=$(event_value '[.[] | select(.event == "shared-info-registered")][0].data.gpa')
if [ -n "$first_gpa" ] && [ "$first_gpa" = "$((gpa))" ]; then
	pass "the first shared-info-registered event has the guest's address ($gpa)"
else
	fail "shared-info-registered says gpa '$first_gpa', the guest $gpa"
fi
started=$(event_value '.[0].data | [.vcpus, .memory_mib, .kairos_device, .outsourcing] | map(tostring) | join(" ")')
if [ "$started" = "2 256 true true" ]; then
	pass "started says 2 vCPUs, 256 MiB, the Kairos device and outsourcing"
else
	fail "started says '$started', expected '2 256 true true'"
fi
finish
