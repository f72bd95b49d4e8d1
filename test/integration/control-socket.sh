#!/usr/bin/env bash
# The control socket (issue 11, "Driving a running VM"): kairos run
# --api-sock, driven by kairos ctl against a real guest: status, live
# stats, a 5 s pause (the guest does not run, its clock still follows the
# host's afterwards), resume, and shutdown, which presses the ACPI power
# button: the guest's acpid powers it off, kairos exits 0 with "guest
# powered off" and removes the socket. The guest runs clock-probe, which sends its
# CLOCK_REALTIME through the sample ports, so the host compares the two
# clocks on the same VM exit (as wall-clock.sh does).
source "$(dirname "$0")/lib.sh"
require_kvm
require_jq
: "${KAIROS_MODULE_KO:?}" "${KAIROS_CLOCK_PROBE:?}"

# What needs no VM: kairos ctl's usage errors, and run refusing a path
# that is not a socket (exit 2, before KVM).
expect_exit() {
	local wanted=$1 what=$2 rc=0
	shift 2
	"$@" >usage.out 2>usage.err || rc=$?
	if [ "$rc" -eq "$wanted" ]; then
		pass "$what: exit $rc"
	else
		fail "$what: exit $rc, expected $wanted ($(head -c 300 usage.err))"
	fi
}
expect_exit 0 "ctl --help" "$KAIROS_BIN" ctl --help
grep -q "raise-event PORT" usage.out || fail "ctl --help does not list raise-event"
expect_exit 1 "ctl on a missing socket" "$KAIROS_BIN" ctl "$WORK/none.sock" status
grep -q "none.sock: No such file or directory" usage.err || fail "no-socket error: $(cat usage.err)"
expect_exit 2 "ctl with an unknown command" "$KAIROS_BIN" ctl "$WORK/none.sock" frobnicate
grep -q "unknown command 'frobnicate'" usage.err || fail "bad-command error: $(cat usage.err)"
expect_exit 2 "ctl with a bad port" "$KAIROS_BIN" ctl "$WORK/none.sock" raise-event 4096
grep -q "port: must be an integer 0..511, got '4096'" usage.err || fail "bad-port error: $(cat usage.err)"
write_config plain.json 1 128 "$BASE_CMDLINE"
echo "not a socket" >taken
expect_exit 2 "run --api-sock on a regular file" "$KAIROS_BIN" run plain.json --api-sock taken
grep -q "^kairos: --api-sock taken: exists and is not a socket; refusing to replace it$" usage.err ||
	fail "taken-path error: $(cat usage.err)"
[ "$(cat taken)" = "not a socket" ] || fail "the regular file was changed"

clock_probe_initramfs probe.cpio
# The probe outlasts the test: kairos ctl shutdown ends the VM, through the
# guest (the image carries the button driver, evdev and acpid).
write_config vm.json 1 256 \
	"$BASE_CMDLINE kairos.init=run:/usr/bin/clock-probe kairos.args=--realtime,--seconds,600,--interval-ms,100,--tag,5" \
	"$WORK/probe.cpio" '"console": {"input": "none"}'

cat >inside.sh <<'SCRIPT'
#!/bin/bash
# Inside the KVM machine. $1: the kairos binary. The socket lives on a
# tmpfs of the emulated machine (/run), not on the 9p share.
kairos=$1
sock=/run/kairos-control-test.sock
ctl() { "$kairos" ctl "$sock" "$@"; }
samples() { jq -r '.clock_drift["5"].samples // 0' "$1" 2>/dev/null || echo 0; }
timeout 300 "$kairos" run vm.json --api-sock "$sock" --stats stats.json --events events.jsonl \
	>console.txt 2>kairos.txt &
pid=$!
for _ in $(seq 1 300); do
	[ -S "$sock" ] && break
	sleep 0.1
done
ctl status >status-running.json
echo "status-rc=$?"
# The threads' names, for top and ps (README, priority windows); not the
# kernel's io_uring workers (iou-wrk-N, iou-sqp-N), which come and go.
echo "threads=$(cat /proc/"$(pgrep -P "$pid" | head -n 1)"/task/*/comm 2>/dev/null | grep -v '^iou-' | sort | xargs)"
# Until the guest's probe sends samples (boot takes ~20 s here).
for _ in $(seq 1 400); do
	ctl stats >stats-live.json 2>/dev/null
	[ "$(samples stats-live.json)" -ge 20 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.5
done
echo "stats-live-samples=$(samples stats-live.json)"
ctl pause >pause.json
echo "pause-rc=$?"
sleep 1 # a sample in flight at the pause lands
ctl stats >stats-paused-1.json
ctl status >status-paused.json
sleep 4
ctl stats >stats-paused-2.json
echo "paused-samples=$(samples stats-paused-1.json) $(samples stats-paused-2.json)"
ctl resume >resume.json
echo "resume-rc=$?"
sleep 3
ctl stats >stats-resumed.json
echo "resumed-samples=$(samples stats-resumed.json)"
ctl raise-event 3 >raise.json
echo "raise-rc=$?"
ctl shutdown >shutdown.json
echo "shutdown-rc=$?"
# The guest powers off by itself; if it does not within 120 s (the button
# was lost), quit, so the test fails on the stop line, not on a timeout.
for _ in $(seq 1 1200); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
	echo "power-button-ignored=yes"
	ctl quit >quit.json
fi
wait "$pid"
echo "kairos-rc=$?"
echo "socket-left=$([ -e "$sock" ] && echo yes || echo no)"
cat kairos.txt >&2
# A guest that triple-faulted in early boot (the emulated machine's known
# flake) ends this script as kairos would, so that with-kvm runs it once
# more, as run_guest's boots are.
grep -q 'kairos: guest triple fault' kairos.txt && exit 4
exit 0
SCRIPT
chmod +x inside.sh
KAIROS_TEST_RETRY_TRIPLE_FAULT=1 run_in_kvm ./inside.sh "$KAIROS_BIN"
value() { sed -n "s/^$1=//p" out.txt | head -n 1; }
log "$(grep -E '^(stats-live|paused|resumed)-samples' out.txt | tr '\n' ' ')"

# A 1-vCPU guest with outsourcing on (the default): the loop keeps the
# process's name; the vCPU and the timer thread have their own.
if [ "$(value threads)" = "kairos kairos-timer kairos-vcpu0" ]; then
	pass "threads are named kairos, kairos-timer, kairos-vcpu0"
else
	fail "thread names are '$(value threads)', expected 'kairos kairos-timer kairos-vcpu0'"
fi
for step in status pause resume raise shutdown; do
	if [ "$(value "$step-rc")" = 0 ]; then pass "ctl $step: exit 0"; else fail "ctl $step: exit '$(value "$step-rc")'"; fi
done
json_is() { # FILE FILTER EXPECTED
	local actual
	actual=$(jq -r "$2" "$1" 2>/dev/null || true)
	if [ "$actual" = "$3" ]; then pass "$1 $2 = $3"; else fail "$1 $2 is '$actual', expected '$3'"; fi
}
json_is status-running.json .state running
json_is status-running.json .vcpus 1
json_is pause.json .state paused
json_is status-paused.json .state paused
json_is status-paused.json .vcpus_waiting 1
json_is resume.json .state running
json_is stats-live.json .state running
json_is stats-paused-1.json .state paused
json_is raise.json .port 3
json_is shutdown.json .power_button pressed
json_is shutdown.json .state running
# The live document is the --stats one, but for the stop's "exit".
json_is stats-live.json '.seccomp' 2
json_is stats-live.json 'has("exit")' false

read -r before after <<<"$(value paused-samples)"
live=$(value stats-live-samples)
resumed=$(value resumed-samples)
if [ "${live:-0}" -ge 20 ]; then pass "the guest sent clock samples before the pause ($live)"; else fail "only '$live' samples before the pause"; fi
# The vCPU does not run while paused: no sample reaches the host.
if [ -n "$before" ] && [ "$before" = "$after" ]; then
	pass "no guest sample during the pause ($before)"
else
	fail "samples went from '$before' to '$after' during the pause"
fi
if [ "${resumed:-0}" -gt "${after:-0}" ]; then pass "samples again after resume ($resumed)"; else fail "no samples after resume ('$resumed')"; fi
# The guest's clock follows the host's over the pause: the last sample's
# guest-minus-host offset changed by under 1 s since the first (a guest
# clock held for the pause would be 5 s behind).
change_us=$(jq -r '.clock_drift["5"].series[-1][1] // empty' stats-resumed.json)
log "guest-minus-host clock offset change after the pause: ${change_us:-?} us"
if [ -n "$change_us" ] && awk -v c="$change_us" 'BEGIN { exit !(c > -1000000 && c < 1000000) }'; then
	pass "the guest clock follows the host's after a 5 s pause (${change_us} us)"
else
	fail "guest clock offset change after the pause: '$change_us' us"
fi

if [ "$(value kairos-rc)" = 0 ]; then pass "kairos exit 0 after ctl shutdown"; else fail "kairos exit '$(value kairos-rc)'"; fi
[ "$(value power-button-ignored)" = yes ] && fail "the guest did not power off within 120 s of the power button"
if grep -q "^kairos: guest powered off.*(exit 0)$" err.txt; then
	pass "the guest powered off after the power button"
else
	fail "no 'guest powered off' stop line after ctl shutdown: $(grep '^kairos: ' err.txt | tail -n 1)"
fi
grep -q "KAIROS-GUEST power-button" console.txt || fail "the guest's acpid did not run the power-button action"
if [ "$(jq -r -s '[.[] | select(.event == "power-button")] | length' events.jsonl)" = 1 ]; then
	pass "events: one power-button"
else
	fail "events: no power-button event"
fi
if [ "$(value socket-left)" = no ]; then pass "the socket file was removed"; else fail "the socket file is left"; fi
expect_stat '.exit.code' 0 0
expect_confined vm.json
paused_ns=$(jq -r -s '[.[] | select(.event == "resumed")][0].data.paused_ns // 0' events.jsonl)
if [ "$(jq -r -s '[.[] | select(.event == "paused")] | length' events.jsonl)" = 1 ] &&
	awk -v p="$paused_ns" 'BEGIN { exit !(p >= 4e9) }'; then
	pass "events: paused, then resumed after ${paused_ns} ns"
else
	fail "events: no paused/resumed pair ($paused_ns ns)"
fi
cp kairos.txt err.txt # kairos's messages, for finish's diagnostics
finish
