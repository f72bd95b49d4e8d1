#!/usr/bin/env bash
# The periodic virtual timer (events.virtual_timer_hz) reaches the guest at
# the configured rate, within 5 %, counted by kairos.ko's per-port counters
# over an interval measured with the kairos clock.
source "$(dirname "$0")/lib.sh"
require_kvm
: "${KAIROS_MODULE_KO:?}"
HZ=20

cat >count-ticks <<'SCRIPT'
#!/bin/sh
# In the guest: virtual-timer deliveries (port 1) over 10 s of host time.
count() { awk '$1 == 1 { print $2 }' /sys/kernel/debug/kairos/events; }
t0=$(cat /sys/kernel/kairos/clock_ns); c0=$(count)
sleep 10
t1=$(cat /sys/kernel/kairos/clock_ns); c1=$(count)
echo "KAIROS-GUEST ticks=$((c1 - c0))"
echo "KAIROS-GUEST tick_window_ms=$(((t1 - t0) / 1000000))"
SCRIPT
chmod +x count-ticks
"$KAIROS_SOURCE_DIR/guest/image/build-initramfs" --output ticks.cpio \
	--extra "$KAIROS_MODULE_KO:/lib/modules/kairos/kairos.ko" \
	--extra count-ticks:/usr/bin/count-ticks >/dev/null
write_config vm.json 1 256 "$BASE_CMDLINE kairos.init=run:/usr/bin/count-ticks" "$WORK/ticks.cpio" \
	"\"clock\": {\"kvmclock\": false}, \"events\": {\"virtual_timer_hz\": $HZ}"
run_guest vm.json
expect_rc 0
expect_value module "kairos ok"
# With kvm-clock off, loading kairos.ko makes it the current clocksource.
expect_value clocksource_after_modules kairos
ticks=$(guest_value ticks)
window=$(guest_value tick_window_ms)
if [ -n "$ticks" ] && [ -n "$window" ] && [ "$window" -gt 0 ]; then
	expected=$((HZ * window / 1000))
	log "counted $ticks virtual timer events in $window ms at $HZ Hz (expected $expected)"
	if [ $((ticks * 100)) -ge $((expected * 95)) ] && [ $((ticks * 100)) -le $((expected * 105)) ]; then
		pass "virtual timer rate within 5 %"
	else
		fail "virtual timer: $ticks events in $window ms, expected $expected +- 5 %"
	fi
else
	fail "no tick count from the guest"
fi
raised=$(jq -r '.kairos.events.virtual_timer.raised' stats.json)
if [ "$raised" -gt 0 ]; then pass "host raised $raised virtual timer events"; else fail "host raised none"; fi
finish
