#!/usr/bin/env bash
# Priority windows (DESIGN.md 5, kairos_abi.h "Priority windows") with real
# guests of 2 vCPUs, the sleeper pinned to vCPU 1 and the upcall on vCPU 0
# (guest/selftest/kairos-window-selftest):
#   1. windows open and close around outsourced timers, on both vCPUs the
#      work needs, and close because the guest reported the work done;
#   2. a guest that never reports done, then arms a timer every 10 us for
#      10 s: its windows end by timeout, the CPU budget cuts them, and the
#      CPU time its vCPUs spent at raised priority stays within
#      runtime/period of the run (plus one banked runtime per vCPU);
#   3. kairos.ko unloaded while a window is open (the guest owes its
#      work): the window closes
#      (closed_by_detach), the module reloads and sleeps again.
# Asserts counts and bounds from --stats, never a time.
source "$(dirname "$0")/lib.sh"
require_kvm

require_kairos_image "kairos.ko and the window self-test"
require_jq

SELFTEST="kairos.init=run:/usr/bin/kairos-window-selftest kairos.modules=0"

# Windows need CAP_SYS_NICE and full CPU affinity: the emulated machine
# runs kairos as root, unpinned. A fallback to fifo still counts as windows.
expect_window_policy() {
	local policy
	policy=$(stat_value .outsourcing.window.policy)
	case "$policy" in
	deadline | fifo) pass "windows applied with policy $policy" ;;
	*) fail "windows were not applied (policy '$policy'); kairos said: $(grep -m1 window err.txt || true)" ;;
	esac
}

# run NAME: boots NAME.json, keeps its stderr and stats, logs what kairos
# said about windows.
run() {
	run_guest "$1.json"
	cp err.txt "$1-err.txt"
	cp stats.json "$1-stats.json" 2>/dev/null || true
	log "kairos said: $(grep -m2 'window' err.txt | tr '\n' ' ')"
}

# --- 1. windows around outsourced timers ---------------------------------------
# A budget that fits the emulated machine, where one wake-up has cost each
# vCPU 1-2.5 ms of CPU, 5 ms when the host is busy (sleeps 20 ms apart:
# up to 25%): the bucket is 3/4 of 40% (all of it if the kernel refuses
# DEADLINE and windows fall back to FIFO), and holds 30 ms, so a slow window
# is not cut (a 1.5 ms bucket cut 35 of 56). A timeout no loaded CI host
# reaches. 2 vCPUs x 2 x 40% stays within the kernel's admission limit (a
# vCPU's bandwidth returns only at its 0-lag time, so one re-entering soon
# counts twice).
write_config done.json 2 256 "$BASE_CMDLINE $SELFTEST kairos.args=done,50,20000,0,200" \
	"$KAIROS_TEST_INITRAMFS_KAIROS" \
	'"outsourcing": {"window": {"runtime_us": 40000, "period_us": 100000, "timeout_us": 100000}}'
run "done"
expect_rc 0
expect_value window-load ok
expect_value window-hooks on
expect_value upcall-vcpu 0
expect_value window-sleeps 50
expect_value window-sleeps-early 0
expect_value window-sleeps-failed 0
expect_value window-arm-far ok
expect_value window-rmmod ok
expect_value window-reload ok
expect_value window-reload-sleeps 10
expect_value window-kernel-warnings 0
expect_window_policy
expect_stat .outsourcing.window.opened 1
expect_stat .outsourcing.window.closed_by_guest 1
expect_stat .outsourcing.window.cpu_ns 1
expect_stat .outsourcing.errors.bad_vcpu 0 0
opened=$(stat_value .outsourcing.window.opened)
opened=${opened:-0}
# Both vCPUs the work needs were wanted, in most windows: the upcall's and
# the sleeper's; and most windows ended by the guest's report. Wanted is
# raised or refused admission: the kernel's SCHED_DEADLINE admission has
# refused a third of the raises here when the host was busy (a vCPU's
# bandwidth comes back only at its 0-lag time), and those windows rightly
# went without it; which vCPU they asked for is what is under test.
for vcpu in 0 1; do
	wanted=$(jq -r ".vcpus[$vcpu] | (.windows + .window_refusals)" stats.json 2>/dev/null || echo none)
	if [[ $wanted =~ ^[0-9]+$ ]] && [ "$wanted" -ge $((opened / 2)) ]; then
		pass "vCPU $vcpu wanted in $wanted of $opened windows"
	else
		fail "vCPU $vcpu wanted in '$wanted' of $opened windows, expected at least half" \
			"($(jq -c ".vcpus[$vcpu]" stats.json 2>/dev/null))"
	fi
done
expect_stat .outsourcing.window.closed_by_guest $((opened / 2))
by_guest=$(stat_value .outsourcing.window.closed_by_guest)
log "windows: opened=$opened closed_by_guest=$by_guest" \
    "closed_by_timeout=$(stat_value .outsourcing.window.closed_by_timeout)" \
    "closed_by_budget=$(stat_value .outsourcing.window.closed_by_budget)" \
    "admission_refusals=$(stat_value .outsourcing.window.admission_refusals)" \
    "cpu_ns=$(stat_value .outsourcing.window.cpu_ns) lead_ns=$(stat_value .outsourcing.window.lead_ns)" \
    "advance_ns=$(stat_value .outsourcing.advance_ns)"

# --- 2. a hostile guest: never done, then a 10 us storm for 10 s ----------------
# FIFO windows: with SCHED_DEADLINE, thousands of budget cuts in 10 s have
# left the emulated machine's own kernel (Debian 6.1, TCG) hung after kairos
# had exited cleanly (with-kvm timed out with the stats written). The
# budget under test is Kairos's bucket (under FIFO the whole runtime, which
# the bound below allows); the first boot covers DEADLINE.
write_config hostile.json 2 256 "$BASE_CMDLINE $SELFTEST kairos.args=never-done,50,5000,10,200" \
	"$KAIROS_TEST_INITRAMFS_KAIROS" '"outsourcing": {"window": {"policy": "fifo"}}'
run hostile
expect_rc 0
expect_value window-no-done ok
expect_value window-sleeps 50
expect_value window-storm ok
expect_value window-kernel-warnings 0
expect_window_policy
expect_stat .outsourcing.window.closed_by_timeout 1
expect_stat .outsourcing.window.closed_by_budget 1
expect_stat .outsourcing.window.budget_exhausted 1
storm=$(guest_value window-storm-expiries)
if [[ $storm =~ ^[0-9]+$ ]] && [ "$storm" -ge 1000 ]; then
	pass "the storm fired $storm timers"
else
	fail "the storm fired '$storm' timers, expected at least 1000"
fi
# The bound: CPU time inside windows <= runtime/period of the run per vCPU,
# plus one banked runtime each (the bucket) and a margin for the charge
# being taken once per pass.
read -r cpu runtime period run_ms < <(jq -r '[.outsourcing.window.cpu_ns, .outsourcing.window.runtime_ns,
	.outsourcing.window.period_ns, .runtime_ms] | @tsv' stats.json)
bound=$(((run_ms * 1000000 * runtime / period + runtime) * 2 * 12 / 10 + 20000000))
if [[ $cpu =~ ^[0-9]+$ ]] && [ "$cpu" -le "$bound" ]; then
	pass "CPU time at raised priority ${cpu} ns <= bound ${bound} ns (runtime/period of ${run_ms} ms, 2 vCPUs)"
else
	fail "CPU time at raised priority '${cpu}' ns exceeds the bound ${bound} ns"
fi
log "hostile: opened=$(stat_value .outsourcing.window.opened)" \
    "timeouts=$(stat_value .outsourcing.window.closed_by_timeout)" \
    "budget_exhausted=$(stat_value .outsourcing.window.budget_exhausted) cpu_ns=$cpu run_ms=$run_ms"

# --- 3. unload while a window is open ------------------------------------------
# The guest never reports done (as in 2), so each window stays open until
# its timeout, 1 s (the most allowed) after the last expiry it covers; the
# arm-far timer (50 ms out, within the 60 ms lead) extends it, and rmmod
# follows at once. A guest that reports done cannot test this here: in the
# emulated machine rmmod has come after the 50 ms, the timer fired, its
# callback reported done and the window closed first. Nothing else may
# close it: FIFO (the emulated machine's kernel has refused DEADLINE
# admission at random) and a budget of 0.9 s per second, which the sleeps
# cannot empty (there a wake-up has cost a vCPU 40 ms of CPU). This boot is
# about detach; the budget's bound is the storm's, above.
write_config unload.json 2 256 "$BASE_CMDLINE $SELFTEST kairos.args=never-done,5,5000,0,50" \
	"$KAIROS_TEST_INITRAMFS_KAIROS" \
	'"outsourcing": {"window": {"policy": "fifo", "lead_us": 60000, "timeout_us": 1000000, "runtime_us": 900000, "period_us": 1000000}}'
run unload
expect_rc 0
expect_value window-no-done ok
expect_value window-arm-far ok
expect_value window-rmmod ok
expect_value window-reload ok
expect_value window-reload-sleeps 10
expect_value window-kernel-warnings 0
expect_stat .outsourcing.window.closed_by_detach 1
log "unload windows: $(jq -c .outsourcing.window stats.json 2>/dev/null || echo 'no stats')"
finish
