# shellcheck shell=bash
# Shared helpers for the guest integration tests. Each test script sources
# this, boots a real guest through scripts/with-kvm and asserts on what the
# guest printed (its /init reports "KAIROS-GUEST key=value" lines), on the
# exit code of `kairos run` and on its --stats JSON. No timing assertions.
#
# Environment (set by CTest, see CMakeLists.txt beside this file):
#   KAIROS_BIN, KAIROS_SOURCE_DIR, KAIROS_TEST_KERNEL, KAIROS_TEST_INITRAMFS
set -euo pipefail

: "${KAIROS_BIN:?KAIROS_BIN must point at the kairos binary}"
: "${KAIROS_SOURCE_DIR:?}"
: "${KAIROS_TEST_KERNEL:?}"
: "${KAIROS_TEST_INITRAMFS:?}"

WITH_KVM="$KAIROS_SOURCE_DIR/scripts/with-kvm"
# timeout(1) that says what kairos's threads do when the limit hits.
TIMEOUT_DUMP="$KAIROS_SOURCE_DIR/test/integration/timeout-dump"
TEST_NAME=$(basename "$0" .sh)
# with-kvm shares the current directory writable with the emulated machine,
# so everything a test writes lives under it.
WORK="$PWD/$TEST_NAME.work"
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"
failures=0
failed_checks=()
boots=0

log() { printf '%s: %s\n' "$TEST_NAME" "$*"; }

# Exit 77 (CTest's SKIP_RETURN_CODE) with a loud reason when no KVM can be had.
require_kvm() {
	if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		return
	fi
	if command -v qemu-system-x86_64 >/dev/null && ls /boot/vmlinuz-* >/dev/null 2>&1; then
		return  # scripts/with-kvm emulates an AMD-V machine
	fi
	echo "SKIPPED: $TEST_NAME needs /dev/kvm with hardware virtualization, or" \
	     "qemu-system-x86_64 and a Debian kernel for scripts/with-kvm" >&2
	exit 77
}

# require_kairos_image WHAT: exit 77 loudly unless the guest image with the
# project's modules exists (KAIROS_TEST_INITRAMFS_KAIROS); WHAT names the
# modules the test needs.
require_kairos_image() {
	if [ -n "${KAIROS_TEST_INITRAMFS_KAIROS:-}" ] && [ -f "$KAIROS_TEST_INITRAMFS_KAIROS" ]; then
		return
	fi
	echo "SKIPPED: $TEST_NAME needs the guest image with $1" \
	     "(KAIROS_TEST_INITRAMFS_KAIROS='${KAIROS_TEST_INITRAMFS_KAIROS:-}'; the modules are" \
	     "built only when linux-headers for the guest kernel are installed)" >&2
	exit 77
}

# require_jq: exit 77 loudly without jq (the tests read --stats JSON with it).
require_jq() {
	command -v jq >/dev/null && return
	echo "SKIPPED: $TEST_NAME needs jq to read JSON (apt-get install jq)" >&2
	exit 77
}

# write_config FILE VCPUS MEMORY_MIB CMDLINE [INITRD] [EXTRA_JSON]
write_config() {
	local file=$1 vcpus=$2 memory=$3 cmdline=$4 initrd=${5:-$KAIROS_TEST_INITRAMFS} extra=${6:-}
	cat >"$file" <<JSON
{
  "machine": {"vcpus": $vcpus, "memory_mib": $memory},
  "boot": {"kernel": "$KAIROS_TEST_KERNEL", "initrd": "$initrd", "cmdline": "$cmdline"}${extra:+,
  $extra}
}
JSON
}

# clock_probe_initramfs OUTPUT [--extra SRC:DEST]...: the default image
# plus kairos.ko and the guest's clock-probe (and any further programs),
# for the tests that compare the guest's clocks with the host's.
clock_probe_initramfs() {
	local output=$1
	shift
	: "${KAIROS_MODULE_KO:?}" "${KAIROS_CLOCK_PROBE:?}"
	# With the kernel's release: the image gets the power button's modules.
	"$KAIROS_SOURCE_DIR/guest/image/build-initramfs" --output "$output" \
		${KAIROS_GUEST_KERNEL_VERSION:+--kernel-version "$KAIROS_GUEST_KERNEL_VERSION"} \
		--extra "$KAIROS_MODULE_KO:/lib/modules/kairos/kairos.ko" \
		--extra "$KAIROS_CLOCK_PROBE:/usr/bin/clock-probe" "$@" >/dev/null
}

# The command line every test starts from: the init mode is appended.
# shellcheck disable=SC2034 # used by the tests that source this file
BASE_CMDLINE="console=ttyS0 reboot=k panic=-1 pci=off quiet"

# in_kvm INPUT COMMAND...: runs COMMAND in the KVM machine, stdin from
# INPUT; sets RC and leaves out.txt and err.txt. When the emulated machine
# of scripts/with-kvm dies before COMMAND could report, or (with
# KAIROS_TEST_RETRY_TRIPLE_FAULT=1, as run_guest sets) the guest
# triple-faulted, or the machine hung past with-kvm's --timeout (the
# command bounds itself below it), with-kvm runs it again, up to twice (its
# --retry-infra, where the rule is); the failed attempts' messages go to
# attempt1.err and are shown here, so that err.txt holds the attempt whose
# verdict counts.
in_kvm() {
	local input=$1 retry=--retry-infra marker
	shift
	[ "${KAIROS_TEST_RETRY_TRIPLE_FAULT:-0}" = 1 ] && retry=--retry-triple-fault
	set +e
	# --retry-hang: every test's command bounds its own run well below
	# 420 s (run_guest's kairos runs under timeout 360), so a machine that
	# still runs at 420 s hung itself.
	"$WITH_KVM" --timeout 420 "$retry" --retry-hang -- "$@" <"$input" >out.txt 2>err.txt
	RC=$?
	set -e
	# with-kvm's line after each failed attempt (no test runs a retrying
	# with-kvm inside one): the last one starts the attempt that counts.
	marker=$(grep -n '^with-kvm: INFRA: ' err.txt | tail -n 1 | cut -d: -f1 || true)
	[ -n "$marker" ] || return 0
	head -n "$marker" err.txt >attempt1.err
	tail -n +"$((marker + 1))" err.txt >err.retried
	mv err.retried err.txt
	log "INFRA: the emulated machine or its guest died before the command could report;" \
	    "with-kvm ran it again ($(grep -c '^with-kvm: INFRA: ' attempt1.err) time(s))." \
	    "The failed attempts' messages (kept in attempt1.err):"
	sed 's/^/  | /' attempt1.err | tail -n 40
}

# expect_confined CONFIG [STATS]: the run's --stats (default stats.json)
# shows the confinement of issue 12 (docs/SECURITY.md): seccomp active
# (expect_seccomp_active), the capabilities dropped
# (expect_capabilities_dropped) and /dev/kvm closed (expect_kvm_closed).
# Every guest test calls it for each boot.
expect_confined() {
	expect_seccomp_active "$@"
	expect_capabilities_dropped "$@"
	expect_kvm_closed "${2:-stats.json}"
}

# expect_seccomp_active CONFIG [STATS]: the run's --stats (default
# stats.json) says its main thread ran under a seccomp filter (the
# "Seccomp:" field of /proc/self/status, 2) unless CONFIG turns
# security.seccomp off (then 0). A missing stats file is a failure too: it
# would leave the confinement unchecked (issue 12: seccomp is active in
# every guest test run).
expect_seccomp_active() {
	local config=$1 stats=${2:-stats.json} wanted=2 actual
	if ! command -v jq >/dev/null; then
		fail "jq is needed to read seccomp from --stats (apt-get install jq)"
		return
	fi
	# (not jq's //: it treats false as missing)
	[ "$(jq -r '.security.seccomp' "$config")" = false ] && wanted=0
	actual=$(jq -r '.seccomp // "absent"' "$stats" 2>/dev/null || echo "no --stats file")
	if [ "$actual" = "$wanted" ]; then
		pass "seccomp mode $actual at the stop"
	else
		fail "seccomp mode at the stop is '$actual', expected $wanted (security.seccomp)"
	fi
}

# expect_capabilities_dropped CONFIG [STATS]: every thread (read when the
# last had started) and the main thread at the stop hold exactly the
# capabilities CONFIG needs of those kairos had at setup, and none
# inheritable or ambient; with CAP_SETPCAP at setup, the bounding set is
# down to them too. What CONFIG needs is derived here, not read from
# kairos: CAP_SYS_NICE when the timer service raises a priority
# (outsourcing.priority other than normal, or windows not off), else none.
expect_capabilities_dropped() {
	local config=$1 stats=${2:-stats.json} problems
	# shellcheck disable=SC2016 # jq's variables, not the shell's
	if ! problems=$(jq -r --slurpfile config "$config" '
		$config[0] as $c
		| ($c.clock.kairos != false and $c.outsourcing.enabled != false) as $service
		| (($c.outsourcing.priority // "normal") != "normal"
			or ($c.outsourcing.window.policy // "deadline") != "off") as $raised
		| (if $service and $raised then ["cap_sys_nice"] else [] end) as $needed
		| .security.capabilities as $caps
		| ($needed - ($needed - ($caps.at_setup // []))) as $kept
		| [(if $caps == null then "no security.capabilities" else empty end),
			(if $caps.effective != $kept then "effective \($caps.effective), expected \($kept)" else empty end),
			(if $caps.permitted != $kept then "permitted \($caps.permitted), expected \($kept)" else empty end),
			(if $caps.threads_at_start.permitted != $kept or ($caps.threads_at_start.threads // 0) < 2
				then "every thread at the start: \($caps.threads_at_start)" else empty end),
			(if $caps.inheritable != [] or $caps.ambient != []
				then "inheritable \($caps.inheritable), ambient \($caps.ambient)" else empty end),
			(if ($caps.at_setup // [] | any(. == "cap_setpcap")) and ($caps.bounding - $needed) != []
				then "bounding \($caps.bounding)" else empty end)]
		| if . == [] then "ok: \($kept)" else join("; ") end' "$stats" 2>&1); then
		problems="no readable --stats $stats or $config: $problems"
	fi
	case "$problems" in
	ok:*) pass "capabilities after setup: ${problems#ok: } (every thread; none inheritable or ambient)" ;;
	*) fail "capabilities not dropped as $config needs: $problems" ;;
	esac
}

# expect_kvm_closed [STATS]: no descriptor of /dev/kvm was open at the stop
# (the VM and vCPU fds are not /dev/kvm's).
expect_kvm_closed() {
	local stats=${1:-stats.json} open
	open=$(jq -r '.security.kvm_system_fds // "absent"' "$stats" 2>/dev/null || echo "no --stats file")
	if [ "$open" = 0 ]; then
		pass "/dev/kvm closed after setup"
	else
		fail "/dev/kvm descriptors open at the stop: '$open', expected 0"
	fi
}

# run_guest_typing CONFIG INPUT_FILE: as run_guest, for a guest booted with
# kairos.init=shell: INPUT_FILE is typed once the shell's prompt is on the
# console. Typed earlier (stdin a file from the start), input can be lost
# between the kernel's open of the console and the shell's own terminal
# set-up, and the guest then waits for ever. The FIFO is on tmpfs: the work
# folder is a 9p share, where mkfifo makes no FIFO.
run_guest_typing() {
	local config=$1 input=$2
	log "booting $(basename "$config"), typing $(wc -l <"$input") line(s) at the prompt"
	rm -f stats.json events.jsonl
	cat >typing.sh <<SCRIPT
#!/bin/sh
fifo=\$(mktemp -u /dev/shm/kairos-typing.XXXXXX)
mkfifo "\$fifo" || exit 99
"$KAIROS_BIN" run "$config" --stats stats.json --events events.jsonl <"\$fifo" >guest.txt 2>kairos.txt &
pid=\$!
exec 3>"\$fifo"
rm -f "\$fifo"
for i in \$(seq 1 600); do
	grep -q '/ # ' guest.txt 2>/dev/null && break
	kill -0 \$pid 2>/dev/null || break
	sleep 0.5
done
cat "$input" >&3
wait \$pid
code=\$?
exec 3>&-
cat kairos.txt >&2
exit \$code
SCRIPT
	chmod +x typing.sh
	KAIROS_TEST_RETRY_TRIPLE_FAULT=1 in_kvm /dev/null "$TIMEOUT_DUMP" 360 ./typing.sh
	# The guest's console, where run_guest leaves it.
	mv guest.txt out.txt 2>/dev/null || : >out.txt
	record_boot "$config"
}

# record_boot CONFIG: after a boot, says how kairos ended, checks the
# confinement (expect_confined), and keeps the console for finish() (a
# later boot overwrites out.txt).
record_boot() {
	log "kairos exited with $RC: $(tail -n 1 err.txt)"
	[ "$RC" = 124 ] && describe_hang
	expect_confined "$1"
	boots=$((boots + 1))
	cp out.txt "boot$boots.out"
}

# describe_hang: the last boot ran into its 360 s limit (RC 124). Says,
# as a failed check (so that the end of a CI log keeps it), what each of
# kairos's threads was doing then (timeout-dump's lines in err.txt: state,
# CPU used over a second, wait channel), what the vCPUs used over the whole
# run (stats.json, written at the TERM) and the console's last line.
describe_hang() {
	local threads vcpus last
	threads=$(sed -n 's/^timeout-dump:   \([^ ]*\) ([0-9]*): state \(.\), \([0-9]*\) ms CPU in 1 s, wchan \(.*\)$/\1 \2 \3ms \4/p' \
		err.txt | paste -sd ';' -)
	vcpus=$(jq -r '"runtime \(.runtime_ms) ms, vCPU CPU " + ([.vcpus[] | "\(.cpu_ns / 1000000 | floor) ms"] | join("/"))
		+ ", exits " + ([.vcpus[] | .exits | tostring] | join("/"))' stats.json 2>/dev/null || echo "no stats.json")
	last=$(grep -v '^[[:space:]]*$' out.txt 2>/dev/null | tail -n 1 | cut -c 1-120 || true)
	log "the guest hung until the limit; kairos's threads at the limit (timeout-dump, in err.txt):"
	grep '^timeout-dump:' err.txt | sed 's/^/  | /' | head -n 80 || true
	fail "boot $((boots + 1)) hung until the 360 s limit: threads [${threads:-none seen}]; $vcpus;" \
		"console's last line: '${last}'"
}

# emulation_fault: the last boot (RC, out.txt) ended in the emulated
# machine's event-delivery fault: the guest kernel double-faulted on the
# first instruction of its system-call entry (entry_SYSCALL_64+0x0), where
# SYSCALL has just masked interrupts (EFLAGS.IF 0) and the user's stack is
# still loaded, so that an event delivered there pushes its frame onto
# user memory and faults again. Nothing may be delivered at that point;
# kairos delivers nothing itself (every interrupt goes through KVM's
# in-kernel irqchip; it sets registers only at boot and reset), so it is
# KVM's or the emulator's doing. Seen in the disk test's 64 MiB write
# (a `yes` making write calls) in the emulated AMD-V machine, beside the
# triple faults of console-heavy guests (README, Status).
emulation_fault() {
	[ "$RC" = 3 ] && grep -q 'traps: PANIC: double fault' out.txt 2>/dev/null &&
		grep -q 'RIP: 0010:entry_SYSCALL_64+0x0/' out.txt
}

# guest_hung: the last boot (RC, err.txt) ran until its 360 s limit with
# kairos still running, timeout-dump's lines in err.txt (a hung emulated
# machine is with-kvm's to retry, and says so itself).
guest_hung() {
	[ "$RC" = 124 ] && grep -q '^timeout-dump: ' err.txt 2>/dev/null
}

# boot_in_kvm INPUT ARGS...: in_kvm INPUT timeout-dump 360 ARGS... (a kairos
# run), once more when the first boot ended in emulation_fault or hung
# (guest_hung: a guest gone silent, seen in CI in the emulated machine at
# most once a run, in tests whose guests share no device but the console
# (boot-flags-only mid-line, disk early in its boot), and once here, in
# bench/io's iperf3; its cause is not known, and timeout-dump is there to
# find it).
# Loudly: INFRA, the evidence on the log, the first boot's console and
# stderr kept (emulation-fault.out, hang.out and hang.err). A second hang
# or fault is the verdict.
boot_in_kvm() {
	local input=$1
	shift
	KAIROS_TEST_RETRY_TRIPLE_FAULT=1 in_kvm "$input" "$TIMEOUT_DUMP" 360 "$@"
	if emulation_fault; then
		cp out.txt emulation-fault.out
		log "INFRA: the guest double-faulted on entry_SYSCALL_64+0x0 (an event delivered" \
		    "with interrupts masked: the emulated machine's fault, see emulation_fault);" \
		    "booting once more. Its console (kept in emulation-fault.out):"
		grep -m 1 -A 3 'traps: PANIC: double fault' emulation-fault.out | sed 's/^/  | /'
	elif guest_hung; then
		cp out.txt hang.out
		cp err.txt hang.err
		log "INFRA: the guest hung until the 360 s limit; booting once more. What kairos's" \
		    "threads did then, and the console's last lines (kept in hang.err and hang.out):"
		grep '^timeout-dump: ' hang.err | head -n 60 | sed 's/^/  | /'
		tail -n 5 hang.out | sed 's/^/  | /'
	else
		return 0
	fi
	# The first boot's must not pass for the second's (run_guest's names).
	rm -f stats.json events.jsonl
	KAIROS_TEST_RETRY_TRIPLE_FAULT=1 in_kvm "$input" "$TIMEOUT_DUMP" 360 "$@"
}

# run_guest CONFIG [STDIN_FILE]: runs kairos in the KVM machine; sets RC and
# leaves out.txt (guest console), err.txt (kairos messages), stats.json and
# events.jsonl (--events; see expect_events). Checks the confinement
# (expect_confined).
run_guest() {
	local config=$1 input=${2:-/dev/null}
	log "booting $(basename "$config")"
	rm -f stats.json events.jsonl  # a previous boot's must not pass for this one's
	boot_in_kvm "$input" "$KAIROS_BIN" run "$config" --stats stats.json --events events.jsonl
	record_boot "$config"
}

# run_guest_flags ARGS...: as run_guest, for `kairos run ARGS...` without
# a config file (--kernel and the other flags). The seccomp check reads the
# effective config that `kairos check ARGS...` prints (effective.json).
run_guest_flags() {
	log "booting kairos run $*"
	if ! "$KAIROS_BIN" check "$@" >effective.json 2>check.err; then
		fail "kairos check $* refused the flags: $(cat check.err)"
	fi
	rm -f stats.json events.jsonl
	boot_in_kvm /dev/null "$KAIROS_BIN" run "$@" --stats stats.json --events events.jsonl
	record_boot effective.json
}

# expect_events REASON: the last boot's --events file (events.jsonl) is JSON
# lines, one object each, that start with `started` and end with the one
# `stopped`, whose reason is REASON and exit code kairos's ($RC).
expect_events() {
	local reason=$1 summary
	if ! jq -R -s -e '[split("\n")[] | select(length > 0) | (try fromjson catch null) | type == "object"]
		| length > 0 and all' events.jsonl >/dev/null 2>&1; then
		fail "events.jsonl is not one JSON object per line: $(head -c 2000 events.jsonl 2>&1)"
		return
	fi
	summary=$(jq -r -s '[.[0].event, .[-1].event, ([.[] | select(.event == "stopped")] | length),
		.[-1].data.reason, .[-1].data.exit_code] | map(tostring) | join(" ")' events.jsonl)
	if [ "$summary" = "started stopped 1 $reason $RC" ]; then
		pass "events.jsonl: $(wc -l <events.jsonl) JSON lines from started to stopped ($reason, exit $RC)"
	else
		fail "events.jsonl: first, last, stops, reason, exit are '$summary';" \
			"expected 'started stopped 1 $reason $RC': $(cat events.jsonl)"
	fi
}

# expect_event_count EVENT COUNT: the last boot logged EVENT COUNT times.
expect_event_count() {
	local count
	count=$(jq -r -s --arg event "$1" '[.[] | select(.event == $event)] | length' events.jsonl 2>/dev/null ||
		echo "no events.jsonl")
	if [ "$count" = "$2" ]; then
		pass "events.jsonl has $2 $1"
	else
		fail "events.jsonl has $count $1, expected $2"
	fi
}

# event_value FILTER: a jq FILTER over the last boot's events (an array).
event_value() { jq -r -s "$1" events.jsonl 2>/dev/null || true; }

# run_in_kvm COMMAND...: any command (e.g. a script) inside the KVM machine.
run_in_kvm() {
	in_kvm /dev/null "$@"
}

fail() {
	log "FAIL: $*"
	failures=$((failures + 1))
	failed_checks+=("$*")
}

pass() { log "ok: $*"; }

# guest_value KEY: the value of the guest's "KAIROS-GUEST KEY=value" line.
guest_value() {
	sed -n "s/^KAIROS-GUEST $1=//p" out.txt | tr -d '\r' | head -n 1
}

expect_rc() {
	if [ "$RC" -eq "$1" ]; then pass "exit code $1"; else fail "exit code $RC, expected $1"; fi
}

expect_value() {
	local actual
	actual=$(guest_value "$1")
	if [ "$actual" = "$2" ]; then pass "$1=$2"; else fail "$1 is '$actual', expected '$2'"; fi
}

# expect_between KEY LOW HIGH: an integer guest value in [LOW, HIGH].
expect_between() {
	local actual
	actual=$(guest_value "$1")
	if [ -n "$actual" ] && [ "$actual" -ge "$2" ] && [ "$actual" -le "$3" ]; then
		pass "$1=$actual within [$2, $3]"
	else
		fail "$1 is '$actual', expected within [$2, $3]"
	fi
}

# stat_value PATH: a value of kairos' --stats JSON (stats.json), or empty.
stat_value() { jq -r "$1 // empty" stats.json 2>/dev/null || true; }

# expect_stat PATH LOW [HIGH]: an integer --stats value in [LOW, HIGH]
# (no upper bound without HIGH).
expect_stat() {
	local actual
	actual=$(stat_value "$1")
	if [[ $actual =~ ^[0-9]+$ ]] && [ "$actual" -ge "$2" ] &&
		{ [ -z "${3:-}" ] || [ "$actual" -le "$3" ]; }; then
		pass "stats: $1=$actual within [$2, ${3:-}]"
	else
		fail "stats: $1 is '$actual', expected within [$2, ${3:-}]"
	fi
}

# expect_demo_exact PREFIX: a timer demo's report (kairos_demo.c,
# plain_timers.c: KAIROS-GUEST PREFIX-KEY=VALUE) says every callback ran
# once per arming, none before its deadline and none after its cancel.
expect_demo_exact() {
	local key
	for key in early duplicates missing cancelled_fired; do
		expect_value "$1-$key" 0
	done
}

# expect_demo_no_add_errors PREFIX: every kairos_timer_add/mod succeeded;
# if not, the first errno says why (-EBUSY: the request ring stayed full).
expect_demo_no_add_errors() {
	expect_value "$1-add_errors" 0
	[ "$(guest_value "$1-add_errors")" = 0 ] ||
		log "the first failed add or mod returned $(guest_value "$1-first_add_error")"
}

# expect_demo_report PREFIX COUNT: the demo loaded, armed COUNT timers and
# finished; about every 10th was cancelled (unless it fired first); fired
# == COUNT - cancelled + re-armed after firing == expected; and
# expect_demo_exact.
expect_demo_report() {
	local prefix=$1 count=$2 cancelled refired fired
	expect_value "$prefix-ring" 1
	expect_value "$prefix-insmod" ok
	expect_value "$prefix-finished" yes
	expect_value "$prefix-count" "$count"
	expect_value "$prefix-armed" "$count"
	cancelled=$(guest_value "$prefix-cancelled")
	refired=$(guest_value "$prefix-mod_after_fire")
	fired=$(guest_value "$prefix-fired")
	expect_between "$prefix-cancelled" 1 $((count / 10))
	if [ -n "$cancelled" ] && [ -n "$refired" ] &&
		[ "$fired" = $((count - cancelled + refired)) ]; then
		pass "fired=$fired == $count - cancelled ($cancelled) + re-armed after firing ($refired)"
	else
		fail "fired is '$fired', expected $count - cancelled ('$cancelled') + re-armed after firing ('$refired')"
	fi
	expect_value "$prefix-expected" "$fired"
	expect_demo_exact "$prefix"
}

# expect_error RC MESSAGE_PART DESCRIPTION COMMAND...: COMMAND (no guest:
# the CLI tests) exits RC with one line on stderr that contains MESSAGE_PART.
expect_error() {
	local rc=$1 message=$2 description=$3
	shift 3
	set +e
	"$@" >out.txt 2>err.txt
	RC=$?
	set -e
	if [ "$RC" -eq "$rc" ] && grep -qF -- "$message" err.txt && [ "$(wc -l <err.txt)" -eq 1 ]; then
		pass "$description"
	else
		fail "$description: expected exit $rc and one line with '$message'; got exit $RC: $(cat err.txt)"
	fi
}

expect_output() {
	if grep -qF -- "$1" out.txt; then pass "console shows '$1'"; else fail "console lacks '$1'"; fi
}

expect_stderr() {
	if grep -qF -- "$1" err.txt; then pass "kairos says '$1'"; else fail "kairos did not say '$1'"; fi
}

expect_no_stderr() {
	if grep -qF -- "$1" err.txt; then fail "kairos said '$1'"; else pass "kairos did not say '$1'"; fi
}

# print_guest_warnings: the kernel's warnings and errors from every boot of
# this test (the console tail above shows the last boot only).
print_guest_warnings() {
	local file
	for file in boot*.out; do
		[ -e "$file" ] || continue
		if grep -q -E "$GUEST_WARNING_RE" "$file"; then
			log "warnings in $file (boot ${file//[!0-9]/} of $boots):"
			grep -E "$GUEST_WARNING_RE" "$file" | head -n 20 | sed 's/^/  | /'
		fi
	done
}
GUEST_WARNING_RE='WARNING:|BUG:|Oops|Call Trace|kairos[_a-z]*: .*(error|fail|-[0-9]+$)|kairos_timer_(add|mod|del)'

# finish: print the evidence on failure and exit with the verdict.
finish() {
	if [ "$failures" -ne 0 ]; then
		log "$failures check(s) failed; guest console (tail):"
		# (set -e and pipefail: a test that failed before any boot has
		# no out.txt, and must still reach the list below.)
		tail -n 40 out.txt 2>/dev/null | sed 's/^/  | /' || true
		print_guest_warnings || true
		log "kairos stderr:"
		sed 's/^/  | /' err.txt 2>/dev/null | tail -n 20 || true
		# Once more at the very end: a CI log that keeps only its head
		# and tail still shows which checks failed.
		log "failed checks:"
		printf '  - %s\n' "${failed_checks[@]}"
		exit 1
	fi
	log "all checks passed"
	rm -rf "$WORK"
	exit 0
}
