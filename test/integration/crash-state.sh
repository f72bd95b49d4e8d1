#!/usr/bin/env bash
# A guest that cannot run on gets its vCPU state printed, as QEMU prints it
# for a KVM internal error (issue 12): the registers, and the code at RIP.
# The "kernel" is the real one's setup header with a payload whose 64-bit
# entry is an x87 load from an address the page tables map but no memory
# backs (512 MiB, above the guest's 256): KVM must emulate the access and
# its emulator has no x87 loads, so the run ends with an internal error
# (exit 5) at the entry, and the code there must be those bytes.
source "$(dirname "$0")/lib.sh"
require_kvm

python3 - "$KAIROS_TEST_KERNEL" crash-kernel <<'PY'
import struct, sys
real = open(sys.argv[1], 'rb').read()
setup_sects = real[0x1f1] or 4
setup = bytearray(real[:(setup_sects + 1) * 512])
# fld qword [0x20000000]; the 64-bit entry is at offset 0x200 (boot.rst).
code = bytes([0xdd, 0x04, 0x25, 0x00, 0x00, 0x00, 0x20])
payload = bytearray(0x200) + code + bytearray(4096 - 0x200 - len(code))
struct.pack_into('<I', setup, 0x1f4, len(payload) // 16)  # syssize, in 16-byte units
open(sys.argv[2], 'wb').write(setup + payload)
PY

cat >crash.json <<JSON
{
  "machine": {"vcpus": 1, "memory_mib": 256},
  "boot": {"kernel": "crash-kernel", "cmdline": "console=ttyS0"},
  "console": {"input": "none"}
}
JSON
run_in_kvm timeout --kill-after=10 120 "$KAIROS_BIN" run crash.json --stats stats.json
log "kairos exited with $RC: $(tail -n 1 err.txt)"
expect_rc 5
# The state report's ioctls are on the vCPU thread's list.
expect_confined crash.json
expect_stderr "KVM internal error"
expect_stderr "kairos: vCPU 0 state:"
# RIP at the 64-bit entry (1 MiB + 0x200), and the load there.
expect_stderr "RIP=0000000000100200"
if grep -qE '^Code=([0-9a-f]{2} )*<dd> 04 25 00 00 00 20' err.txt; then
	pass "the code at RIP is the load the payload holds"
else
	fail "no '<dd> 04 25 00 00 00 20' at RIP in: $(grep '^Code=' err.txt)"
fi
if [ "$(tail -n 1 err.txt | cut -c1-27)" = "kairos: guest could not run" ]; then
	pass "the stop line is still the last line"
else
	fail "last line: $(tail -n 1 err.txt)"
fi
finish
