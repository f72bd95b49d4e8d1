#!/usr/bin/env bash
# Self-test for scripts/with-kvm: boots (at most) two emulated machines and
# checks that COMMAND gets a working hardware-style /dev/kvm, and that
# arguments, environment, stdin/stdout/stderr, the working directory and the
# exit code make it across. Exit 0 = all checks passed.
#
# Honours KAIROS_WITH_KVM=direct|emulate like the script itself, so the same
# checks can be run against the direct path on a host with VMX/SVM.

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
with_kvm=$here/../scripts/with-kvm

# Exit 77 (CTest's SKIP_RETURN_CODE) when with-kvm cannot possibly work here.
if ! { grep -qwE 'vmx|svm' /proc/cpuinfo && [ -r /dev/kvm ] && [ -w /dev/kvm ]; } &&
	! { command -v qemu-system-x86_64 >/dev/null && ls /boot/vmlinuz-* >/dev/null 2>&1; }; then
	echo "SKIPPED: needs vmx/svm with /dev/kvm, or qemu-system-x86_64 and /boot/vmlinuz-*" >&2
	exit 77
fi

failures=0
ok() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND...
	local d=$1; shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/with-kvm-selftest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
work=$tmp/work # COMMAND's working directory (shared writable with the guest)
mkdir "$work"

# Runs inside the machine. Prints key=value lines on stdout, a marker on
# stderr, writes a file into the working directory and exits 7.
cat >"$work/inner.sh" <<'INNER'
set -u
echo "pwd=$(pwd)"
for a in "$@"; do echo "arg=[$a]"; done
echo "env=[${KAIROS_X-unset}]"
echo "stdin=[$(cat)]"
if grep -qw svm /proc/cpuinfo; then echo "cpu=svm"
elif grep -qw vmx /proc/cpuinfo; then echo "cpu=vmx"
else echo "cpu=none"; fi
echo "kvmdev=$(ls -l /dev/kvm 2>&1)"
for m in kvm_amd kvm_intel; do [ -d /sys/module/$m ] && echo "module=$m"; done
# Exercise /dev/kvm for real: API version, create a VM and a vCPU, run
# `mov al,0x42; out 0x10,al; hlt` in real mode and check both exits.
# (/usr/bin/python3 first: a pyenv shim on PATH costs seconds under TCG.)
py=/usr/bin/python3; [ -x $py ] || py=python3
$py - <<'PY' || echo "kvmrun=python-failed"
import ctypes, fcntl, mmap, os, struct
kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
print("api=%d" % fcntl.ioctl(kvm, 0xAE00))                  # KVM_GET_API_VERSION
vm = fcntl.ioctl(kvm, 0xAE01, 0)                            # KVM_CREATE_VM
mem = mmap.mmap(-1, 0x1000)
mem.write(bytes([0xb0, 0x42, 0xe6, 0x10, 0xf4]))
addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
fcntl.ioctl(vm, 0x4020AE46,                                 # KVM_SET_USER_MEMORY_REGION
            struct.pack("IIQQQ", 0, 0, 0, 0x1000, addr))
vcpu = fcntl.ioctl(vm, 0xAE41, 0)                           # KVM_CREATE_VCPU
run = mmap.mmap(vcpu, fcntl.ioctl(kvm, 0xAE04))             # KVM_GET_VCPU_MMAP_SIZE
sregs = bytearray(312)
fcntl.ioctl(vcpu, 0x8138AE83, sregs)                        # KVM_GET_SREGS
struct.pack_into("Q", sregs, 0, 0)                          # cs.base
struct.pack_into("H", sregs, 12, 0)                         # cs.selector
fcntl.ioctl(vcpu, 0x4138AE84, bytes(sregs))                 # KVM_SET_SREGS
regs = bytearray(144)
struct.pack_into("Q", regs, 128, 0)                         # rip
struct.pack_into("Q", regs, 136, 2)                         # rflags
fcntl.ioctl(vcpu, 0x4090AE82, bytes(regs))                  # KVM_SET_REGS
exits = []
for _ in range(2):
    fcntl.ioctl(vcpu, 0xAE80, 0)                            # KVM_RUN
    reason = struct.unpack_from("I", run, 8)[0]
    if reason == 2:                                         # KVM_EXIT_IO
        _, size, port, count, off = struct.unpack_from("BBHIQ", run, 32)
        exits.append("io:%#x=%#x" % (port, run[off]))
    else:
        exits.append(str(reason))
print("kvmrun=" + ",".join(exits))
PY
echo "hello from the inside" >"written-inside.txt"
echo "ERRMARK"   >&2
exit 7
INNER

echo "# with-kvm self-test (mode ${KAIROS_WITH_KVM:-auto})"

# --- boot 1: everything that can share a machine --------------------------
# shellcheck disable=SC2016 # a literal $HOME: it must arrive unexpanded
args=("a b" "it's" '"dq"' '$HOME' '')
start=$(date +%s.%N)
(cd "$work" && printf 'stdin payload\nline 2' |
	KAIROS_X="x y'z" "$with_kvm" --timeout 600 -- bash ./inner.sh "${args[@]}" \
		>"$tmp/out" 2>"$tmp/err")
rc=$?
end=$(date +%s.%N)
echo "# boot 1 took $(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }') s"

check "exit code is propagated (7)" test "$rc" -eq 7
has() { grep -qxF -- "$2" "$tmp/$1"; }
check "CPU in the machine has svm or vmx" grep -qxE 'cpu=(svm|vmx)' "$tmp/out"
check "/dev/kvm is a character device" grep -qE '^kvmdev=c' "$tmp/out"
check "kvm_amd or kvm_intel is loaded" grep -qxE 'module=kvm_(amd|intel)' "$tmp/out"
check "KVM_GET_API_VERSION returns 12" has out "api=12"
check "a KVM guest runs (out 0x10 <- 0x42, then hlt)" has out "kvmrun=io:0x10=0x42,5"
check "working directory is the caller's" has out "pwd=$work"
check "arg with space" has out "arg=[a b]"
check "arg with single quote" has out "arg=[it's]"
check "arg with double quotes" has out 'arg=["dq"]'
# shellcheck disable=SC2016 # a literal $HOME, as sent
check "arg with \$ is not expanded" has out 'arg=[$HOME]'
check "empty arg survives" has out "arg=[]"
check "exactly 5 args arrive" test "$(grep -c '^arg=' "$tmp/out")" -eq 5
check "KAIROS_X passes through verbatim" has out "env=[x y'z]"
contains() { [[ $(<"$tmp/$1") == *"$2"* ]]; }
check "stdin is forwarded (incl. EOF)" contains out $'stdin=[stdin payload\nline 2]'
check "stderr arrives on stderr" has err "ERRMARK"
check "stderr is not on stdout" bash -c "! grep -qF ERRMARK '$tmp/out'"
check "stdout is not on stderr" bash -c "! grep -qF 'pwd=' '$tmp/err'"
# (On a cold cache with-kvm announces the one-time kernel preparation.)
check "stderr has nothing else (no kernel log)" \
	test "$(grep -vE '^with-kvm: (preparing kernel|done)' "$tmp/err")" = ERRMARK
check "file written inside is visible on the host" \
	grep -qxF "hello from the inside" "$work/written-inside.txt"

if ((failures)); then
	echo "# --- stdout ---"; cat "$tmp/out"
	echo "# --- stderr ---"; cat "$tmp/err"
fi

# --- cheap checks that need no successful boot ----------------------------
"$with_kvm" --cpus 0 -- true 2>"$tmp/err"
rc=$?
check "bad --cpus is a usage error (exit 2)" test "$rc" -eq 2
check "usage error is a one-line message" test "$(wc -l <"$tmp/err")" -eq 1

start=$(date +%s)
"$with_kvm" --timeout 3 -- sleep 300 </dev/null >/dev/null 2>"$tmp/err"
rc=$?
check "--timeout expiry exits 124" test "$rc" -eq 124
check "--timeout expiry says so" grep -q 'timed out' "$tmp/err"
check "--timeout expiry is prompt" test $(($(date +%s) - start)) -lt 30

# A kernel that locks up is a failed machine, told within seconds, not at
# the timeout: a soft lockup of a minute, as the kernel would print it.
start=$(date +%s)
"$with_kvm" --timeout 300 -- sh -c \
	'echo "<0>watchdog: BUG: soft lockup - CPU#0 stuck for 61s! [selftest:1]" >/dev/kmsg; sleep 280' \
	</dev/null >/dev/null 2>"$tmp/err"
rc=$?
check "a kernel lockup is a failed machine (exit 125)" test "$rc" -eq 125
check "a kernel lockup is named" grep -q 'emulated machine failed: its kernel locked up' "$tmp/err"
check "a kernel lockup is caught before the timeout" test $(($(date +%s) - start)) -lt 200

if ((failures)); then
	echo "# $failures check(s) FAILED"
	exit 1
fi
echo "# all checks passed"
