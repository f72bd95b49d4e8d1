#!/usr/bin/env bash
# lib.sh's in_kvm, through the real scripts/with-kvm and its --retry-infra,
# runs COMMAND again, at most twice, when the emulated machine itself died
# (with-kvm's exit 125 and its own message) or, when asked, when the guest
# triple-faulted, and never when COMMAND failed otherwise; each retried run
# gets the same stdin, and err.txt and out.txt hold the run whose verdict
# counts. No VM: with-kvm's direct path (KAIROS_WITH_KVM=direct) runs a stub
# COMMAND that follows a plan, one outcome per call, and says what a dying
# emulated machine makes with-kvm say.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cat >"$scratch/command" <<'STUB'
#!/bin/sh
n=$(($(cat "$STUB_DIR/calls" 2>/dev/null || echo 0) + 1))
echo "$n" >"$STUB_DIR/calls"
echo "call $n read '$(cat)'"
echo "stub: call $n" >&2
case $(sed -n "${n}p" "$STUB_DIR/plan") in
died) echo "with-kvm: emulated machine stopped without COMMAND's exit status (qemu exit 0)" >&2; exit 125 ;;
setup) echo "with-kvm: emulated machine failed: cannot mount host root" >&2; exit 125 ;;
cmd125) echo "kairos: the command itself exited 125" >&2; exit 125 ;;
fail) echo "kairos: guest panicked" >&2; exit 3 ;;
triple) echo "kairos: guest triple fault: vCPU 0 triple-faulted (exit 4)" >&2; exit 4 ;;
hung) echo "with-kvm: timed out after 420s (emulated machine killed)" >&2; exit 124 ;;
syscall-df)
	echo "[   67.192837] traps: PANIC: double fault, error_code: 0x0"
	echo "[   67.200874] RIP: 0010:entry_SYSCALL_64+0x0/0x29"
	echo "kairos: guest kernel panic: the guest kernel panicked and reset (exit 3)" >&2; exit 3 ;;
other-df)
	echo "[   67.192837] traps: PANIC: double fault, error_code: 0x0"
	echo "[   67.200874] RIP: 0010:kairos_timer_fire+0x12/0x40 [kairos]"
	echo "kairos: guest kernel panic: the guest kernel panicked and reset (exit 3)" >&2; exit 3 ;;
cmd124) echo "timeout: the command itself timed out" >&2; exit 124 ;;
silent)
	echo "[    8.1] the guest's last line"
	echo "timeout-dump: kairos (pid 7) still running after 360s; its threads and its children's" >&2
	echo "timeout-dump:   kairos-vcpu0 (8): state S, 0 ms CPU in 1 s, wchan kvm_vcpu_block" >&2
	exit 124 ;;
ok) echo "KAIROS-GUEST run=ok"; exit 0 ;;
*) echo "stub: no plan for call $n" >&2; exit 99 ;;
esac
STUB
chmod +x "$scratch/command"
echo "the input" >"$scratch/input"

failures=0
# check PLAN EXPECTED_RC EXPECTED_CALLS [RETRY_TRIPLE_FAULT [FUNCTION]]
# FUNCTION: in_kvm (the default) or boot_in_kvm.
check() {
	local plan=$1 want_rc=$2 want_calls=$3 triple=${4:-0} function=${5:-in_kvm} got calls problem=''
	rm -rf "$scratch/calls" "$scratch/work"
	mkdir "$scratch/work"
	tr ' ' '\n' <<<"$plan" >"$scratch/plan"
	got=$(cd "$scratch/work" && STUB_DIR=$scratch KAIROS_WITH_KVM=direct \
		KAIROS_TEST_RETRY_TRIPLE_FAULT=$triple \
		KAIROS_BIN=/bin/true KAIROS_SOURCE_DIR=$here/../.. KAIROS_TEST_KERNEL=none \
		KAIROS_TEST_INITRAMFS=none bash -c \
		'source "$1"; "$2" "$3" "$4" >/dev/null; echo "$RC"' lib-selftest "$here/lib.sh" \
		"$function" "$scratch/input" "$scratch/command")
	calls=$(cat "$scratch/calls")
	# lib.sh works in lib-selftest.work below the current directory.
	local dir=$scratch/work/lib-selftest.work
	[ "$got" = "$want_rc" ] && [ "$calls" = "$want_calls" ] ||
		problem="rc '$got' after $calls call(s), expected rc $want_rc after $want_calls"
	# The run that counts: its stdout alone, with the whole stdin; its
	# stderr alone in err.txt, the failed attempts' in attempt1.err.
	[ -n "$problem" ] || [ "$(head -n 1 "$dir/out.txt")" = "call $calls read 'the input'" ] ||
		problem="out.txt starts '$(head -n 1 "$dir/out.txt")'"
	[ -n "$problem" ] || [ "$(head -n 1 "$dir/err.txt")" = "stub: call $calls" ] ||
		problem="err.txt starts '$(head -n 1 "$dir/err.txt")'"
	if [ -z "$problem" ] && [ "$calls" -ge 2 ] && [ "$function" = boot_in_kvm ] &&
		[ "${plan%% *}" = silent ]; then
		# The hang's dump and console are kept.
		grep -q 'kairos-vcpu0 (8): state S' "$dir/hang.err" &&
			grep -q "the guest's last line" "$dir/hang.out" ||
			problem="hang.err or hang.out lacks the first boot's"
	elif [ -z "$problem" ] && [ "$calls" -ge 2 ] && [ "$function" = boot_in_kvm ]; then
		# The double fault's console is kept.
		grep -q 'entry_SYSCALL_64+0x0' "$dir/emulation-fault.out" ||
			problem="emulation-fault.out lacks the first boot's double fault"
	elif [ -z "$problem" ] && [ "$calls" -ge 2 ]; then
		# Every failed attempt's messages, each with with-kvm's INFRA line.
		[ "$(head -n 1 "$dir/attempt1.err")" = "stub: call 1" ] &&
			[ "$(grep -c '^with-kvm: INFRA: ' "$dir/attempt1.err")" = $((calls - 1)) ] ||
			problem="attempt1.err lacks the first attempt or one of with-kvm's INFRA lines"
	fi
	if [ -z "$problem" ]; then
		echo "lib-selftest: ok: plan '$plan': rc $got after $calls call(s)"
	else
		echo "lib-selftest: FAIL: plan '$plan': $problem"
		failures=$((failures + 1))
	fi
}

check "ok" 0 1
check "fail" 3 1
check "cmd125" 125 1           # COMMAND's own 125 is a verdict, not a machine death
check "died ok" 0 2
check "setup ok" 0 2
check "died fail" 3 2
check "died died ok" 0 3        # twice at most ...
check "died died died ok" 125 3 # ... and no more
check "triple ok" 4 1          # a triple fault is kairos' verdict ...
check "triple ok" 0 2 1        # ... unless the caller asks (run_guest does)
check "triple triple triple" 4 3 1    # twice at most
check "died triple ok" 0 3 1   # whatever the reasons
check "died triple triple ok" 4 3 1
check "hung ok" 0 2            # the machine hung: a test's COMMAND bounds itself
check "hung hung hung" 124 3   # twice at most
check "cmd124 ok" 124 1        # COMMAND's own timeout is a verdict
# A kairos boot (boot_in_kvm) once more when the guest double-faulted on
# the system-call entry's first instruction (lib.sh, emulation_fault) ...
check "syscall-df ok" 0 2 1 boot_in_kvm
check "syscall-df syscall-df" 3 2 1 boot_in_kvm  # once only
# ... and never for any other panic, nor when a plain in_kvm ran it.
check "other-df ok" 3 1 1 boot_in_kvm
check "fail ok" 3 1 1 boot_in_kvm
check "syscall-df ok" 3 1 1
check "died syscall-df ok" 0 3 1 boot_in_kvm  # a machine death first: with-kvm's retry, then ours
# ... and once more when the guest hung until the limit (timeout-dump's
# lines on stderr), once only; not for a bare 124, nor through in_kvm.
check "silent ok" 0 2 1 boot_in_kvm
check "silent silent ok" 124 2 1 boot_in_kvm
check "silent syscall-df ok" 3 2 1 boot_in_kvm   # one retry, whatever the reasons
check "cmd124 ok" 124 1 1 boot_in_kvm
check "silent ok" 124 1 1
# The same rule asked of with-kvm for a run it did not make (bench/timer-latency's
# boots inside the machine): check_asked [--triple-fault] STATUS MESSAGE EXPECTED.
check_asked() {
	local asked=(--infra-failure) got=0
	if [ "$1" = --triple-fault ]; then
		asked+=(--triple-fault)
		shift
	fi
	asked+=("$1" "$scratch/asked.err")
	echo "$2" >"$scratch/asked.err"
	"$here/../../scripts/with-kvm" "${asked[@]}" >/dev/null || got=$?
	if [ "$got" = "$3" ]; then
		echo "lib-selftest: ok: ${asked[*]:0:${#asked[@]}-1} '$2': $got"
	else
		echo "lib-selftest: FAIL: ${asked[*]:0:${#asked[@]}-1} '$2': $got, expected $3"
		failures=$((failures + 1))
	fi
}
died="with-kvm: emulated machine stopped without COMMAND's exit status (qemu exit 0)"
triple="kairos: guest triple fault: vCPU 0 triple-faulted (exit 4)"
check_asked 125 "$died" 0
check_asked 125 "kairos: the command itself exited 125" 1
check_asked 3 "$died" 1
check_asked 4 "$triple" 1
check_asked --triple-fault 4 "$triple" 0
check_asked --triple-fault 4 "kairos: guest panicked" 1

# finish: a failing test's last lines name every failed check (a CI log
# keeps only the head and tail of a long test's output).
mkdir -p "$scratch/finish"
tail_lines=$(cd "$scratch/finish" && KAIROS_BIN=/bin/true KAIROS_SOURCE_DIR=$here/../.. \
	KAIROS_TEST_KERNEL=none KAIROS_TEST_INITRAMFS=none bash -c \
	'source "$1"; fail "first problem"; pass "fine"; fail "second problem"; finish' \
	lib-selftest "$here/lib.sh" 2>&1 | tail -n 3) || true
expected_tail=$(printf '%s\n' "lib-selftest: failed checks:" "  - first problem" "  - second problem")
if [ "$tail_lines" = "$expected_tail" ]; then
	echo "lib-selftest: ok: finish ends with the failed checks"
else
	echo "lib-selftest: FAIL: finish ended with: $tail_lines"
	failures=$((failures + 1))
fi

# timeout-dump: a command still running at the limit ends with 124, after
# its threads' states are on stderr; one that ends in time keeps its status
# and stdin. describe_hang turns the dump into a failed check that names
# what each thread was doing.
hang_check() { # NAME CONDITION...
	local name=$1
	shift
	if "$@"; then
		echo "lib-selftest: ok: timeout-dump: $name"
	else
		echo "lib-selftest: FAIL: timeout-dump: $name"
		failures=$((failures + 1))
	fi
}
mkdir -p "$scratch/hang"
cd "$scratch/hang"
cat >sleeper <<'SLEEPER'
#!/bin/bash
# A parent waiting for a child that sleeps: two processes, as a wrapper
# script and its kairos.
sleep 60 &
wait
SLEEPER
chmod +x sleeper
rc=0
"$here/timeout-dump" 2 ./sleeper 2>dump.err || rc=$?
hang_check "the limit ends a hung command with 124" [ "$rc" = 124 ]
hang_check "its threads and its child's are named with their states" \
	grep -q '^timeout-dump:   sleep ([0-9]*): state S, 0 ms CPU in 1 s, wchan ' dump.err
hang_check "the hung command is gone" bash -c '! pgrep -f "^sleep 60$" >/dev/null'
rc=0
got=$(echo typed | "$here/timeout-dump" 5 sh -c 'cat; exit 7') || rc=$?
hang_check "a command that ends in time keeps its status and stdin" [ "$rc/$got" = "7/typed" ]
failed=$(cd "$scratch/hang" && cp dump.err err.txt && echo '[    8.0] the last line' >out.txt &&
	echo '{"runtime_ms": 360000, "vcpus": [{"cpu_ns": 5000000, "exits": 9}]}' >stats.json &&
	KAIROS_BIN=/bin/true KAIROS_SOURCE_DIR=$here/../.. KAIROS_TEST_KERNEL=none \
	KAIROS_TEST_INITRAMFS=none bash -c 'source "$1"; cp ../err.txt ../out.txt ../stats.json .;
	RC=124; describe_hang >/dev/null; printf "%s\n" "${failed_checks[@]}"' lib-selftest "$here/lib.sh")
hang_check "describe_hang fails the boot with the threads, the vCPUs and the last line" \
	grep -q "^boot 1 hung until the 360 s limit: threads \[sleeper S 0ms do_wait;sleep S 0ms .*\];" \
	<<<"$failed"
hang_check "... the vCPUs' CPU and exits" grep -qF "runtime 360000 ms, vCPU CPU 5 ms, exits 9;" <<<"$failed"
hang_check "... and the console's last line" grep -qF "console's last line: '[    8.0] the last line'" <<<"$failed"
cd "$here"

[ "$failures" -eq 0 ] || exit 1
echo "lib-selftest: all checks passed"
