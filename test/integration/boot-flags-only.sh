#!/usr/bin/env bash
# A guest booted from flags alone, no config file (issue 11), as QEMU and
# kvmtool boot one: --kernel, --initrd, --append, --cpus, --memory. With
# --log-level info, Kairos also says what it booted and what the guest's
# module registered, and nothing at debug level.
source "$(dirname "$0")/lib.sh"
require_kvm
require_kairos_image "kairos.ko (the shared-info registration is logged at info)"

run_guest_flags --kernel "$KAIROS_TEST_KERNEL" --initrd "$KAIROS_TEST_INITRAMFS_KAIROS" --cpus 2 --memory 192 \
	--append "$BASE_CMDLINE kairos.init=report flags.marker=7" --log-level info
expect_rc 0
expect_stderr "guest powered off"
expect_value cpus 2
expect_between mem_kib $((192 * 1024 * 6 / 10)) $((192 * 1024))
if guest_value cmdline | grep -qw "flags.marker=7"; then
	pass "--append reached the guest"
else
	fail "cmdline is '$(guest_value cmdline)'"
fi
expect_output "KAIROS-GUEST init-done"
expect_stderr "kairos: booting $KAIROS_TEST_KERNEL on 2 vCPUs with 192 MiB"
expect_stderr "kairos: the guest registered its shared-info page at 0x"
expect_no_stderr "kairos: debug:"
finish
