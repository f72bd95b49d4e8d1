#!/usr/bin/env bash
# Bad configs are refused before any KVM call, with one line naming the key,
# and exit code 2; no guest is needed, so this runs on any host.
source "$(dirname "$0")/lib.sh"

check_refused() {  # check_refused JSON EXPECTED_MESSAGE_PART [COMMAND]
	printf '%s\n' "$1" >bad.json
	expect_error 2 "$2" "${3:-run} refused: $2" "$KAIROS_BIN" "${3:-run}" bad.json
}

kernel="\"kernel\": \"$KAIROS_TEST_KERNEL\""
check_refused "{\"machine\": {\"vcpus\": 0}, \"boot\": {$kernel}}" "machine.vcpus: must be 1..64, got 0"
check_refused "{\"machine\": {\"vcpus\": 65}, \"boot\": {$kernel}}" "machine.vcpus: must be 1..64, got 65"
check_refused "{\"machine\": {\"memory_mib\": \"lots\"}, \"boot\": {$kernel}}" "machine.memory_mib: must be an integer"
check_refused "{\"machine\": {\"memory_mib\": 8}, \"boot\": {$kernel}}" "machine.memory_mib: must be 64..65536, got 8"
check_refused "{\"machine\": {\"vpcus\": 2}, \"boot\": {$kernel}}" "machine.vpcus: unknown key"
check_refused "{\"boot\": {\"kernel\": \"no-such-vmlinuz\"}}" "boot.kernel: $WORK/no-such-vmlinuz: no such file"
check_refused "{\"boot\": {$kernel, \"initrd\": \"missing.img\"}}" "boot.initrd: $WORK/missing.img: no such file"
check_refused "{\"boot\": {$kernel}, \"console\": {\"input\": 3}}" "console.input: must be a string"
check_refused "{\"boot\": {$kernel}, \"clock\": {\"kvmclock\": \"yes\"}}" "clock.kvmclock: must be true or false"
check_refused "{\"boot\": {$kernel}" "invalid JSON"
check_refused "{}" "boot: is required"
# What check and run find before KVM (issue 11): the image, the command
# line against this kernel's limit (Kairos's own addition named), output
# paths. Exit 2, one line, from both commands.
printf 'not a kernel\n' >notakernel
long=$(printf '%*s' 3000 '' | tr ' ' x)
near=$(printf '%*s' 2030 '' | tr ' ' x)
for command in check run; do
	check_refused '{"boot": {"kernel": "notakernel"}}' "boot.kernel $WORK/notakernel: not a bzImage" "$command"
	check_refused "{\"boot\": {$kernel, \"cmdline\": \"$long\"}}" \
		"boot.cmdline: 3000 bytes; this kernel accepts at most" "$command"
	check_refused "{\"boot\": {$kernel, \"cmdline\": \"$near\"}, \"clock\": {\"kvmclock\": false}}" \
		"boot.cmdline: 2030 bytes of your own and 22 that Kairos adds" "$command"
	check_refused "{\"boot\": {$kernel}, \"console\": {\"output\": \"/nonexistent/dir/console.log\"}}" \
		"console.output /nonexistent/dir/console.log: the directory /nonexistent/dir does not exist" "$command"
done
# Drives (issue 10): a missing image, and one another process holds locked
# (flock, as a running VM would), are config errors found before KVM: exit
# 2 and one line naming the drive's path key and the file.
truncate -s 1M disk.img
for command in check run; do
	check_refused "{\"boot\": {$kernel}, \"drives\": [{\"id\": \"a\", \"path\": \"gone.img\"}]}" \
		"drives[0].path: drive 'a': $WORK/gone.img: No such file or directory" "$command"
	check_refused "{\"boot\": {$kernel}, \"drives\": [{\"id\": \"a\", \"path\": \"disk.img\", \"cache\": \"fast\"}]}" \
		"drives[0].cache: expected \"none\" or \"writeback\"" "$command"
	exec {lock}<disk.img
	flock --exclusive "$lock"
	check_refused "{\"boot\": {$kernel}, \"drives\": [{\"id\": \"a\", \"path\": \"disk.img\"}]}" \
		"drives[0].path: drive 'a': $WORK/disk.img is locked by another process" "$command"
	exec {lock}<&-
done
# Once let go, the same image is fine (the check's own open released it).
if "$KAIROS_BIN" check bad.json >/dev/null 2>&1 && "$KAIROS_BIN" check bad.json >/dev/null 2>&1; then
	pass "an unlocked image passes check, twice"
else
	fail "kairos check refused an unlocked image: $("$KAIROS_BIN" check bad.json 2>&1 >/dev/null)"
fi
# vsock (issue 10): without the host's vhost-vsock, one line naming the
# module, exit 2. Where the module is loaded, the guest test vsock.sh
# checks the other refusal, a cid another VM holds.
if [ ! -e /dev/vhost-vsock ]; then
	for command in check run; do
		check_refused "{\"boot\": {$kernel}, \"vsock\": {\"cid\": 42}}" \
			"vsock: /dev/vhost-vsock: no such device (load the vhost_vsock module: modprobe vhost_vsock)" "$command"
	done
else
	log "NOTE: /dev/vhost-vsock exists on this host: the missing-module message is checked by the unit tests only"
fi
# --stats is checked at the start, not after the run.
printf '{"boot": {%s}}\n' "$kernel" >stats-target.json
expect_error 2 "--stats /nonexistent/dir/s.json: the directory /nonexistent/dir does not exist" \
	"an unwritable --stats path is refused before the run" \
	"$KAIROS_BIN" run stats-target.json --stats /nonexistent/dir/s.json
# So is --events, which must also be a regular file, not stdout (the
# guest's console), and is run's alone; nothing is created for a refused run.
expect_error 2 "--events /nonexistent/dir/e.jsonl: the directory /nonexistent/dir does not exist" \
	"an unwritable --events path is refused before the run" \
	"$KAIROS_BIN" run stats-target.json --events /nonexistent/dir/e.jsonl
expect_error 2 "--events $WORK: is a directory" "a directory as --events is refused" \
	"$KAIROS_BIN" run stats-target.json --events "$WORK"
expect_error 2 "--events /dev/null: not a regular file" "a device as --events is refused" \
	"$KAIROS_BIN" run stats-target.json --events /dev/null
expect_error 2 "--events: needs a file name (stdout is the guest's console" "--events - is refused" \
	"$KAIROS_BIN" run stats-target.json --events -
expect_error 2 "unknown option '--events' for check" "--events is run's alone" \
	"$KAIROS_BIN" check stats-target.json --events e.jsonl
expect_error 2 "--kernel $WORK/notakernel: not a bzImage" "a config error with --events: exit 2" \
	"$KAIROS_BIN" run --kernel notakernel --events refused.jsonl
if [ ! -e refused.jsonl ]; then
	pass "a run refused for its config creates no --events file"
else
	fail "a refused run created refused.jsonl: $(cat refused.jsonl)"
fi

# A directory is not a config: said so, not a JSON parse error.
expect_error 2 "is a directory, not a JSON config file" "a directory as config is named as one" \
	"$KAIROS_BIN" check "$WORK"

# kairos check validates without running anything (stdout: the effective
# config, test/integration/cli-flags.sh).
write_config good.json 2 256 "console=ttyS0"
if "$KAIROS_BIN" check good.json >out.txt 2>err.txt && grep -q "good.json: ok (2 vCPUs, 256 MiB)" err.txt; then
	pass "kairos check accepts a good config"
else
	fail "kairos check good.json: $(cat out.txt err.txt)"
fi

# A guest larger than the host can give (issue 12, #8): warned by default,
# refused with machine.memory_check "refuse", before anything runs.
host_mib=$(awk '/^(MemAvailable|SwapFree):/ { kb += $2 } END { print int(kb / 1024) }' /proc/meminfo)
if [ "$host_mib" -lt 65536 ]; then
	write_config big.json 1 65536 "console=ttyS0" "" '"console": {"output": "none"}'
	if "$KAIROS_BIN" check big.json >out.txt 2>err.txt &&
		grep -q "warning: machine.memory_mib: 65536 MiB is more than this host can give now" err.txt; then
		pass "a 64 GiB guest on a $host_mib MiB host is warned about"
	else
		fail "64 GiB guest, default memory_check: $(cat out.txt err.txt)"
	fi
	sed -i 's/"memory_mib": 65536/"memory_mib": 65536, "memory_check": "refuse"/' big.json
	for command in check run; do
		expect_error 1 'machine.memory_check is "refuse"' \
			"kairos $command refuses a 64 GiB guest on a $host_mib MiB host, exit 1, one line" \
			"$KAIROS_BIN" "$command" big.json
	done
else
	log "SKIPPED the host-memory checks: this host can give $host_mib MiB, more than a guest may have"
fi

# check names what Kairos appends to the command line.
printf '{"boot": {%s, "cmdline": "console=ttyS0"}, "clock": {"kvmclock": false}}\n' "$kernel" >added.json
if "$KAIROS_BIN" check added.json >out.txt 2>err.txt &&
	grep -qF "13 bytes of boot.cmdline, and up to 22 that Kairos adds (' tsc_early_khz='" err.txt; then
	pass "kairos check names the command-line bytes Kairos adds"
else
	fail "check added.json: $(cat out.txt err.txt)"
fi

# Usage errors.
set +e
"$KAIROS_BIN" frobnicate >/dev/null 2>err.txt; RC=$?
set -e
if [ "$RC" -eq 2 ] && grep -q "unknown command 'frobnicate'" err.txt; then pass "unknown command refused"; else fail "unknown command: exit $RC"; fi
if "$KAIROS_BIN" --help | grep -q "run \[CONFIG.json\] \[OPTIONS\]"; then pass "--help shows usage"; else fail "--help"; fi
# The version, asked for as other tools are asked (issue 11).
for words in "--version" "-V" "version" "run --version" "check -V"; do
	# shellcheck disable=SC2086 # the words are split on purpose
	if "$KAIROS_BIN" $words 2>err.txt | grep -qE '^kairos [0-9]+\.[0-9]+'; then
		pass "kairos $words prints the version"
	else
		fail "kairos $words: $(cat err.txt)"
	fi
done
# A // comment is named as what is wrong with the config.
check_refused "{
  // the guest
  \"boot\": {$kernel}
}" "comments (// and /* */) are not JSON: remove them"
# A setting that would be ignored is refused.
check_refused "{\"boot\": {$kernel}, \"clock\": {\"kairos\": false}, \"outsourcing\": {\"max_timers\": 10}}" \
	"outsourcing.max_timers: has no effect: outsourcing needs clock.kairos (the Kairos device) on"

# On a host whose /dev/kvm has no hardware virtualization, `kairos run` says
# so in one line and points at scripts/with-kvm instead of crawling.
if ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
	expect_error 1 "scripts/with-kvm" "no hardware virtualization: one-line pointer to scripts/with-kvm" \
		"$KAIROS_BIN" run good.json
fi
finish
