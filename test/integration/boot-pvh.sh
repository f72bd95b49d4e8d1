#!/usr/bin/env bash
# The uncompressed vmlinux (build/guest/vmlinux, extracted from the guest
# bzImage by scripts/extract-vmlinux) boots through its PVH entry note
# (issue 11): 32-bit entry, hvm_start_info with the command line, the
# initrd as its module, the RSDP and the memory map. The guest reaches
# /init, sees its vCPU and RAM, and powers off through ACPI (exit 0).
# A truncated ELF is refused by check and run alike, exit 2, one line.
source "$(dirname "$0")/lib.sh"
require_kvm
require_jq

if [ -z "${KAIROS_TEST_VMLINUX:-}" ] || [ ! -s "$KAIROS_TEST_VMLINUX" ]; then
	echo "SKIPPED: $TEST_NAME needs the guest vmlinux (KAIROS_TEST_VMLINUX='${KAIROS_TEST_VMLINUX:-}';" \
	     "empty when the guest kernel has no PVH entry note, CONFIG_PVH)" >&2
	exit 77
fi
KAIROS_TEST_KERNEL=$KAIROS_TEST_VMLINUX

# Bad images first: no guest needed.
head -c 100000 "$KAIROS_TEST_VMLINUX" >truncated-vmlinux
for command in check run; do
	printf '{"boot": {"kernel": "truncated-vmlinux"}}\n' >truncated.json
	expect_error 2 "boot.kernel $WORK/truncated-vmlinux: segment 0" \
		"$command refuses a truncated vmlinux" "$KAIROS_BIN" "$command" truncated.json
done

write_config vm.json 1 128 "$BASE_CMDLINE kairos.init=run:/bin/true"
if "$KAIROS_BIN" check vm.json >/dev/null 2>check.err && grep -qF "kernel: ELF vmlinux (PVH entry)" check.err; then
	pass "check names the kernel format"
else
	fail "check did not say the kernel boots through PVH: $(cat check.err)"
fi

run_guest vm.json
expect_rc 0
expect_stderr "guest powered off"
expect_output "KAIROS-GUEST init-done"
expect_value cpus 1
expect_between mem_kib $((128 * 1024 * 6 / 10)) $((128 * 1024))
expect_value run "/bin/true exit=0"
if grep -q '"reason": "guest powered off"' stats.json; then pass "stats record the power-off"; else fail "stats.json: $(cat stats.json)"; fi
finish
