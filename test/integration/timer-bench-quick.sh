#!/usr/bin/env bash
# Smoke test of the timer-latency benchmark (issue 5): `bench/timer-latency
# --quick` runs to the end and its output is complete and well-formed: a
# progress line and a table row for every cell (load 0 and 2 per CPU x host,
# emulated, outsourced, kernel-hrtimer, kernel-outsourced, roundtrip,
# kernel-roundtrip, and
# host-fifo when SCHED_FIFO is permitted), JSON that jq
# parses with numbers where numbers belong, the p99 ratios, a drift
# figure, series and table row per clocksource and load, and (issue 8) the
# kairos boot's price row (no raised CPU; the busy loops' throughput against
# the host anchors where there are loops), its decomposition rows and the
# priority-window section (empty: --quick runs no window variant).
# Never a timing assertion: the figures are whatever the machine gave.
source "$(dirname "$0")/lib.sh"
require_kvm

BUILD_DIR=$(cd "$(dirname "$KAIROS_BIN")/.." && pwd)
for file in "$BUILD_DIR/bench/timer-latency" "${KAIROS_MODULE_KO:-$BUILD_DIR/guest-kernel-module/kairos.ko}"; do
	if [ ! -f "$file" ]; then
		echo "SKIPPED: $TEST_NAME needs $file (kairos.ko is built only when linux-headers" \
		     "for the guest kernel are installed)" >&2
		exit 77
	fi
done
require_jq

log "running bench/timer-latency --quick"
set +e
timeout --kill-after=10 600 "$KAIROS_SOURCE_DIR/bench/timer-latency" --quick \
	--build-dir "$BUILD_DIR" --work "$WORK/run" --json "$WORK/timer-latency.json" \
	>out.txt 2>err.txt
RC=$?
set -e
log "bench/timer-latency exited with $RC: $(tail -n 1 err.txt)"
expect_rc 0

# Every kairos boot of the benchmark ran confined (issue 12).
booted=0
for stats in "$WORK"/run/stats-*.json; do
	[ -e "$stats" ] || continue
	booted=$((booted + 1))
	expect_confined "$WORK/run/vm-${stats##*/stats-}" "$stats"
done
[ "$booted" -gt 0 ] || fail "no stats-*.json in $WORK/run: the boots' confinement is unchecked"

JSON=$WORK/timer-latency.json
if jq -e . "$JSON" >/dev/null 2>&1; then pass "JSON parses"; else fail "JSON '$JSON' does not parse"; fi

fifo=$(jq -r '.environment.sched_fifo' "$JSON" 2>/dev/null || echo "")
modes="host emulated outsourced kernel-hrtimer kernel-outsourced"
[ "$fifo" = true ] && modes="$modes host-fifo"
num='[0-9]+(\.[0-9]+)?'
for load in 0 2; do
	for mode in $modes roundtrip kernel-roundtrip; do
		interval=1000
		case "$mode" in *roundtrip) interval=0 ;; esac
		cell="load=$load mode=$mode interval=${interval}us"
		# A + in a mode name is literal.
		re_mode=${mode//+/\\+}
		if grep -qE "^timer-latency: load=$load mode=$re_mode interval=${interval}us run=1 p50=${num}us p99=${num}us max=${num}us missed=[0-9]+$" err.txt; then
			pass "progress line for $cell"
		else
			fail "no well-formed progress line for $cell"
		fi
		if grep -qE "^$load +$re_mode +$interval +1 +$num +$num +$num-$num +$num +$num +[0-9]+$" out.txt; then
			pass "table row for $cell"
		else
			fail "no well-formed table row for $cell"
		fi
		if jq -e --arg load "$load" --arg mode "$mode" --argjson interval "$interval" '
			[.cells[] | select(.load == $load and .mode == $mode and .interval_us == $interval)] |
			length == 1 and
			(.[0] | (.p50_us, .p99_us, .p99_min_us, .p99_max_us, .p999_us, .max_us) | type == "number") and
			(.[0] | (.missed, .samples, .runs) | type == "number") and
			.[0].samples == 300 and .[0].runs == 1 and .[0].load_per_cpu == ($load | tonumber)' \
			"$JSON" >/dev/null 2>&1; then
			pass "JSON cell $cell: numbers, 300 samples, 1 run"
		else
			fail "JSON cell $cell missing or not numeric"
		fi
	done
	if jq -e --arg load "$load" '[.ratios_p99_kernel_outsourced_vs_hrtimer[] |
		select(.load == $load and .interval_us == 1000 and (.ratio | type == "number"))] |
		length == 1' "$JSON" >/dev/null 2>&1 &&
		grep -qE "^  load $load, 1000 us: kernel-outsourced / kernel-hrtimer = $num$" out.txt; then
		pass "kernel p99 ratio at load $load: JSON and line"
	else
		fail "no kernel p99 ratio at load $load"
	fi
	# The p99 ratio of the one outsourced mode --quick runs.
	mode=outsourced
	if jq -e --arg load "$load" --arg mode "$mode" '[.ratios_p99_vs_emulated[] |
		select(.load == $load and .mode == $mode and .interval_us == 1000 and
		(.ratio | type == "number"))] | length == 1' "$JSON" >/dev/null 2>&1; then
		pass "p99 ratio $mode/emulated at load $load is a number"
	else
		fail "no numeric p99 ratio $mode/emulated at load $load"
	fi
	if grep -qF "  load $load, 1000 us: $mode / emulated = " out.txt &&
		grep -qE "^  load $load, 1000 us: ${mode//+/\\+} / emulated = $num$" out.txt; then
		pass "ratio line $mode at load $load"
	else
		fail "no ratio line $mode at load $load"
	fi
	# The price of the kairos boot: nothing raised; loops only at load 2.
	if jq -e --arg load "$load" '[.price[] | select(.load == $load and .variant == "kairos")] |
		length == 1 and (.[0] | .raised_cpu_ns == 0 and .raised_cpu_per_wakeup_us == 0 and
		(.measured_s | type == "number") and
		(.vmm_cpu_ns | type == "number" or . == null) and
		if $load == "0" then .throughput_fraction == null
		else all((.throughput_fraction, .loops_cpu_share_fraction, .loops_iterations_per_s,
			.anchor_loops_iterations_per_s); type == "number") end)' "$JSON" >/dev/null 2>&1; then
		pass "price of the kairos boot at load $load"
	else
		fail "no well-formed price row for the kairos boot at load $load"
	fi
	# measured_s, raised CPU (ms, ms/s, ms/s whole, us/wakeup), vmm CPU,
	# vCPU CPU per wake-up, the loops' two fractions.
	if grep -qE "^$load +kairos +$num +0 +0 +0 +0 +($num|-) +($num|-) +($num|-) +($num|-)$" out.txt; then
		pass "price table row at load $load"
	else
		fail "no well-formed price table row at load $load"
	fi
	for mode in emulated outsourced kernel-outsourced; do
		re_mode=${mode//+/\\+}
		if jq -e --arg load "$load" --arg mode "$mode" '[.decomposition[] |
			select(.load == $load and .mode == $mode and .interval_us == 1000)] | length == 1 and
			(.[0] | .variant == "kairos" and (.guest_p50_us | type == "number") and
			 has("guest_mean_us") and has("host_timer_lateness_p50_us") and
			 has("vcpu_run_delay_per_wakeup_us") and has("guest_rest_us") and
			 (.boot_timer_wakeups | type == "number"))' "$JSON" >/dev/null 2>&1 &&
			grep -qE "^$load +$re_mode +1000 +$num +(-|$num) +(-|$num) +(-|$num) +(-|-?$num) +(-|-?$num)$" \
				out.txt; then
			pass "decomposition of $mode at load $load: JSON and table row"
		else
			fail "no well-formed decomposition of $mode at load $load"
		fi
	done
	for cs in kairos tsc kvm-clock; do
		if jq -e --arg load "$load" --arg cs "$cs" '. as $r |
			([$r.drift[] | select(.load == $load and .clocksource == $cs and
			  (.drift_us_per_s | type == "number") and .samples >= 10)] | length == 1) and
			([$r.drift_series[] | select(.load == $load and .clocksource == $cs and
			  (.series | length >= 10))] | length == 1)' "$JSON" >/dev/null 2>&1; then
			pass "drift of $cs at load $load: a number and a series"
		else
			fail "no drift figure or series for $cs at load $load"
		fi
		if grep -qE "^$load +$cs +[0-9]+ +-?$num +-?$num +[0-9]+$" out.txt; then
			pass "drift table row for $cs at load $load"
		else
			fail "no well-formed drift table row for $cs at load $load"
		fi
	done
done
if jq -e '(.environment | (.host_kernel, .cpu_model, .kvm) | type == "string" and length > 0) and
	(.environment.cpus | type == "number") and .config.quick == true and
	.config.loads == ["0", "2"] and .config.intervals_us == [1000] and
	.config.variants == ["kairos"] and
	(.config.reserve.runtime_ns | type == "number") and
	(.ratios_window | type == "array") and (.skipped | type == "array") and
	(.throughput_anchors | map(select(.load == "2" and (.iterations_per_s | type == "number"))) |
	 length == 2) and
	(.elapsed_s | type == "number")' "$JSON" >/dev/null 2>&1; then
	pass "environment and config recorded"
else
	fail "environment or config incomplete: $(jq -c '.environment, .config' "$JSON" 2>&1 | head -c 400)"
fi
if grep -qF "priority window: outsourced+window against" out.txt; then
	pass "priority-window section printed"
else
	fail "no priority-window section"
fi
finish
