#!/usr/bin/env bash
# kairos run/check with flags instead of, or over, a config file (issue 11):
# flags win, each bad value is one line naming the flag with exit 2, `check`
# prints the effective config, a config's relative paths are its folder's
# and a flag's the current directory's, and --log-level filters warnings.
# No guest is needed (guest test boot-flags-only boots one), so this runs on
# any host.
source "$(dirname "$0")/lib.sh"
require_jq

K=$KAIROS_TEST_KERNEL
I=$KAIROS_TEST_INITRAMFS

# refused COMMAND MESSAGE ARGS...: kairos COMMAND --kernel K ARGS... exits 2
# with one line that says MESSAGE.
refused() {
	local command=$1 message=$2
	shift 2
	expect_error 2 "$message" "$command $* refused" "$KAIROS_BIN" "$command" --kernel "$K" "$@"
}

# Each bad value, from both commands: exit 2, one line, the flag named.
printf 'not a kernel\n' >notakernel
long=$(printf '%*s' 3000 '' | tr ' ' x)
for command in check run; do
	refused "$command" "--cpus: must be an integer, got 'abc'" --cpus abc
	refused "$command" "--cpus: must be 1..64, got 0" --cpus 0
	refused "$command" "--cpus: must be 1..64, got 65" --cpus=65
	refused "$command" "--memory: must be 64..65536, got 0" --memory 0
	refused "$command" "--memory: must be an integer, got '1.5G'" --memory 1.5G
	refused "$command" "--memory: 80 MiB is too little for 64 vCPUs: give at least 127" --cpus 64 --memory 80
	refused "$command" "--log-level: must be error, warn, info or debug, got 'loud'" --log-level loud
	refused "$command" "--initrd: $WORK/missing.cpio: no such file" --initrd missing.cpio
	refused "$command" "--memory: needs a size in MiB" --memory
	refused "$command" "unknown option '--cpu' for $command" --cpu 2
	expect_error 2 "--kernel: $WORK/no-such-vmlinuz: no such file" "$command: a missing --kernel is named" \
		"$KAIROS_BIN" "$command" --kernel no-such-vmlinuz
	expect_error 2 "--kernel $WORK/notakernel: not a bzImage" "$command: --kernel that is no kernel is named" \
		"$KAIROS_BIN" "$command" --kernel notakernel
	expect_error 2 "--append: 3000 bytes; this kernel accepts at most" "$command: a too long --append is named" \
		"$KAIROS_BIN" "$command" --kernel "$K" --append "$long"
	expect_error 2 "$command needs a CONFIG.json or --kernel FILE" "$command without a config or --kernel" \
		"$KAIROS_BIN" "$command" --cpus 2
done

# check with flags only: the defaults and the flags, as a config file.
if "$KAIROS_BIN" check --kernel "$K" --initrd "$I" --cpus 2 --memory 512 --append "console=ttyS0 quiet" \
	>effective.json 2>err.txt &&
	[ "$(jq -r '[.machine.vcpus, .machine.memory_mib, .boot.kernel, .boot.initrd, .boot.cmdline,
		.clock.kvmclock, .console.output] | join(",")' effective.json)" = \
		"2,512,$K,$I,console=ttyS0 quiet,true,stdout" ] &&
	grep -q 'ok (2 vCPUs, 512 MiB)' err.txt; then
	pass "check with flags only prints the defaults plus the flags"
else
	fail "check with flags only: $(cat effective.json err.txt)"
fi
# What check printed is a config that reads back the same.
if "$KAIROS_BIN" check effective.json >again.json 2>err.txt && cmp -s effective.json again.json; then
	pass "check's output is a config that check reads back unchanged"
else
	fail "check effective.json: $(diff effective.json again.json) $(cat err.txt)"
fi

# Flags win over the file; the rest of the file stays.
write_config vm.json 4 1024 "console=ttyS0 from-the-file" "$I" '"clock": {"kvmclock": false}'
if "$KAIROS_BIN" check vm.json --cpus 2 --append "console=ttyS0 from-the-flag" >out.txt 2>err.txt &&
	[ "$(jq -r '[.machine.vcpus, .machine.memory_mib, .boot.cmdline, .clock.kvmclock] | join(",")' out.txt)" = \
		"2,1024,console=ttyS0 from-the-flag,false" ]; then
	pass "flags win over the config file, whose other keys stay"
else
	fail "check vm.json --cpus 2 --append ...: $(cat out.txt err.txt)"
fi
# A flag mends a file's bad value; the file's own errors still name the file.
write_config bad-cpus.json 0 256 "console=ttyS0"
if "$KAIROS_BIN" check bad-cpus.json --cpus 1 >out.txt 2>err.txt; then
	pass "--cpus replaces a config's out-of-range machine.vcpus"
else
	fail "check bad-cpus.json --cpus 1: $(cat err.txt)"
fi
expect_error 2 "bad-cpus.json: machine.vcpus: must be 1..64, got 0" "the file's own error names the file" \
	"$KAIROS_BIN" check bad-cpus.json --memory 128

# Relative paths: a config's against its folder, a flag's against the
# current directory.
mkdir -p images configs
cp "$I" images/initrd.cpio
printf '{"boot": {"kernel": "%s", "initrd": "../images/initrd.cpio"}}\n' "$K" >configs/vm.json
if "$KAIROS_BIN" check configs/vm.json >out.txt 2>err.txt &&
	[ "$(jq -r .boot.initrd out.txt)" = "$WORK/configs/../images/initrd.cpio" ]; then
	pass "a config's relative path resolves against the config's folder"
else
	fail "check configs/vm.json: $(cat out.txt err.txt)"
fi
if "$KAIROS_BIN" check configs/vm.json --initrd images/initrd.cpio >out.txt 2>err.txt &&
	[ "$(jq -r .boot.initrd out.txt)" = "$WORK/images/initrd.cpio" ]; then
	pass "a flag's relative path resolves against the current directory"
else
	fail "check configs/vm.json --initrd images/initrd.cpio: $(cat out.txt err.txt)"
fi
expect_error 2 "--initrd: $WORK/../images/initrd.cpio: no such file" \
	"a flag's path is not looked for in the config's folder" \
	"$KAIROS_BIN" check configs/vm.json --initrd ../images/initrd.cpio

# --log-level: a warning shows by default and at warn, not at error. The
# host-memory warning is one that needs no guest.
host_mib=$(awk '/^(MemAvailable|SwapFree):/ { kb += $2 } END { print int(kb / 1024) }' /proc/meminfo)
if [ "$host_mib" -lt 65536 ]; then
	for level in default warn info debug error; do
		args=()
		[ "$level" = default ] || args=(--log-level "$level")
		"$KAIROS_BIN" check --kernel "$K" --memory 65536 "${args[@]}" >out.txt 2>err.txt || true
		warned=no
		grep -q '^kairos: warning: machine.memory_mib: 65536 MiB is more' err.txt && warned=yes
		expected=yes
		[ "$level" = error ] && expected=no
		if [ "$warned" = "$expected" ] && grep -q 'ok (1 vCPU, 65536 MiB)' err.txt; then
			pass "--log-level $level: the memory warning shown: $warned; check's answer always"
		else
			fail "--log-level $level: warning shown '$warned', expected '$expected': $(cat err.txt)"
		fi
	done
else
	log "SKIPPED the --log-level checks: this host can give $host_mib MiB, more than a guest may have"
fi

# run takes the same flags to the point where it needs KVM: without
# hardware virtualization it stops there, after every check passed.
# Its --events file then holds the one `stopped` line, with the error.
if ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
	expect_error 1 "scripts/with-kvm" "run with flags only gets as far as KVM" \
		"$KAIROS_BIN" run --kernel "$K" --initrd "$I" --cpus 2 --memory 128 --log-level debug \
		--events events.jsonl
	if [ "$(jq -r -s '[length, .[0].event, .[0].data.reason, .[0].data.exit_code] | join(",")' events.jsonl)" = \
		"1,stopped,host-error,1" ] && jq -e -s '.[0].data.message | contains("scripts/with-kvm")' events.jsonl \
		>/dev/null; then
		pass "a run that stops at KVM ends its --events file with stopped (host-error)"
	else
		fail "--events after a run that stopped at KVM: $(cat events.jsonl)"
	fi
fi
# The README's examples, as shipped: each passes `check` (its kernel,
# initrd, disk and command line found and fitting), from the source tree
# whose build/ they name.
if [ -e "$KAIROS_SOURCE_DIR/build/guest/rootfs.ext4" ]; then
	for example in "$KAIROS_SOURCE_DIR"/examples/*.json; do
		if "$KAIROS_BIN" check "$example" >example.json 2>example.err; then
			pass "check $(basename "$example"): $(head -n 1 example.err)"
		else
			fail "check $(basename "$example") failed: $(cat example.err)"
		fi
	done
else
	log "examples not checked: they name $KAIROS_SOURCE_DIR/build/guest, which has no images"
fi
finish
