#!/usr/bin/env bash
# Smoke test of the timer-latency benchmark (issue 5): `bench/timer-latency
# --quick` runs to the end and its output is complete and well-formed: a
# progress line and a table row for every cell (load 0 and 2 per CPU x host,
# emulated, outsourced, and host-fifo when SCHED_FIFO is permitted), JSON
# that jq parses with numbers where numbers belong, and a p99 ratio per load.
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

JSON=$WORK/timer-latency.json
if jq -e . "$JSON" >/dev/null 2>&1; then pass "JSON parses"; else fail "JSON '$JSON' does not parse"; fi

fifo=$(jq -r '.environment.sched_fifo' "$JSON" 2>/dev/null || echo "")
modes="host emulated outsourced"
[ "$fifo" = true ] && modes="host host-fifo emulated outsourced"
for load in 0 2; do
	for mode in $modes; do
		cell="load=$load/cpu mode=$mode"
		if grep -qE "^timer-latency: $cell p50=[0-9.]+us p99=[0-9.]+us p99\.9=[0-9.]+us max=[0-9.]+us missed=[0-9]+$" err.txt; then
			pass "progress line for $cell"
		else
			fail "no well-formed progress line for $cell"
		fi
		if grep -qE "^$load +$mode +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+$" out.txt; then
			pass "table row for $cell"
		else
			fail "no well-formed table row for $cell"
		fi
		if jq -e --argjson load "$load" --arg mode "$mode" '
			[.cells[] | select(.load_per_cpu == $load and .mode == $mode)] | length == 1 and
			(.[0] | (.p50_us, .p99_us, .p999_us, .max_us) | type == "number") and
			(.[0] | (.missed, .samples, .interval_us) | type == "number") and
			.[0].samples == 300 and .[0].interval_us == 1000' "$JSON" >/dev/null 2>&1; then
			pass "JSON cell $cell: numbers, 300 samples"
		else
			fail "JSON cell $cell missing or not numeric"
		fi
	done
	if jq -e --argjson load "$load" '[.ratio_p99_outsourced_over_emulated[] |
		select(.load_per_cpu == $load and (.ratio | type == "number"))] | length == 1' \
		"$JSON" >/dev/null 2>&1; then
		pass "p99 ratio at load $load is a number"
	else
		fail "no numeric p99 ratio at load $load"
	fi
	if grep -qE "^p99 outsourced/emulated at load $load/cpu: [0-9.]+$" out.txt; then
		pass "ratio line for load $load"
	else
		fail "no ratio line for load $load"
	fi
done
if jq -e '(.environment | (.host_kernel, .cpu_model, .kvm) | type == "string" and length > 0) and
	(.environment.cpus | type == "number") and .config.quick == true and
	.config.loads_per_cpu == [0, 2] and (.elapsed_s | type == "number")' "$JSON" >/dev/null 2>&1; then
	pass "environment and config recorded"
else
	fail "environment or config incomplete: $(jq -c '.environment, .config' "$JSON" 2>&1 | head -c 400)"
fi
finish
