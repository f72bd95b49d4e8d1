#!/usr/bin/env bash
# virtio-blk (issue 10): the guest boots from an ext4 root disk (a copy of
# build/guest/rootfs.ext4, root=/dev/vda), writes 64 MiB of a known pattern,
# syncs and powers off; a second boot from the same image finds the file
# with the same checksum. A second drive, read-only and with cache "none"
# (O_DIRECT: the guest's reads go to the file, not through the host's page
# cache), reads back the host's bytes and refuses the guest's write, while
# Kairos runs on and exits 0 at the power-off. --stats counts each device's
# requests.
source "$(dirname "$0")/lib.sh"
require_kvm
require_jq
require_kairos_image "the disk modules and kairos-disk-selftest"
if [ -z "${KAIROS_TEST_ROOTFS:-}" ] || [ ! -s "$KAIROS_TEST_ROOTFS" ]; then
	echo "SKIPPED: $TEST_NAME needs the ext4 root image (KAIROS_TEST_ROOTFS='${KAIROS_TEST_ROOTFS:-}';" \
	     "made with mkfs.ext4 -d, package e2fsprogs)" >&2
	exit 77
fi

cp --sparse=always "$KAIROS_TEST_ROOTFS" root.ext4
# The read-only drive: 4 MiB of a pattern of its own, its first MiB's
# checksum known here.
# (yes ends on SIGPIPE: fed through a process substitution, outside
# pipefail's view.)
head -c $((4 * 1024 * 1024)) < <(yes kairos-readonly-drive) >data.img
ro_sha256=$(head -c $((1024 * 1024)) data.img | sha256sum | cut -d' ' -f1)
data_before=$(sha256sum data.img | cut -d' ' -f1)
pattern_sha256=$(head -c $((64 * 1024 * 1024)) < <(yes kairos-disk-pattern) | sha256sum | cut -d' ' -f1)

drives='"drives": [{"id": "root", "path": "root.ext4"}, {"id": "data", "path": "data.img", "read_only": true, "cache": "none"}]'
boot_disk() { # MODE: write or verify
	write_config "vm-$1.json" 2 256 \
		"$BASE_CMDLINE root=/dev/vda kairos.init=run:/usr/bin/kairos-disk-selftest kairos.args=$1" \
		"$KAIROS_TEST_INITRAMFS_KAIROS" "$drives"
	run_guest "vm-$1.json"
	expect_rc 0
	expect_stderr "guest powered off"
	expect_value root /dev/vda
	expect_value disk-root /dev/vda
	expect_value run "/usr/bin/kairos-disk-selftest exit=0"
	expect_value disk-ro-read-sha256 "$ro_sha256"
	expect_value disk-ro-write refused
	expect_value disk-ro-sysfs 1
	expect_value disk-vdb-serial data
	expect_stat '.devices | length' 2 2
	if [ "$(stat_value '.devices[0].id')/$(stat_value '.devices[0].type')" = root/virtio-blk ]; then
		pass "stats: devices[0] is the root virtio-blk"
	else
		fail "stats: devices[0] is '$(jq -c '.devices[0]' stats.json 2>&1)'"
	fi
	expect_stat '.devices[0].requests' 1
	expect_stat '.devices[0].bytes_read' 1
	expect_stat '.devices[0].notifications' 1
	expect_stat '.devices[0].interrupts' 1
	expect_stat '.devices[1].requests' 1
	expect_stat '.devices[1].bytes_read' $((1024 * 1024))
	expect_stat '.devices[1].bytes_written' 0 0
}

boot_disk write
expect_value disk-write-sha256 "$pattern_sha256"
expect_stat '.devices[0].bytes_written' $((64 * 1024 * 1024))

boot_disk verify
expect_value disk-verify-sha256 "$pattern_sha256"

if [ "$(sha256sum data.img | cut -d' ' -f1)" = "$data_before" ]; then
	pass "the read-only drive's image is unchanged"
else
	fail "the read-only drive's image changed"
fi
finish
