#!/usr/bin/env bash
# A hostile virtio-blk driver (issue 10: every descriptor, index and length
# from the guest is untrusted). kairos-virtio-hostile.ko drives the drive's
# virtio-mmio registers itself and posts, each from a fresh device reset,
# the malformed requests listed below; the device must refuse each one
# (DEVICE_NEEDS_RESET for a broken ring, an error status for a bad
# request), never touch memory outside the guest's RAM or on the Kairos
# shared-info page, and serve a valid read afterwards. Kairos runs on and
# exits 0 at the guest's power-off, and the image is unchanged. The guest
# side is /usr/bin/kairos-hostile-selftest.
source "$(dirname "$0")/lib.sh"
require_kvm
require_jq
require_kairos_image "kairos-virtio-hostile.ko and kairos-hostile-selftest"

# 1 MiB: a marker the valid read must find, then a pattern.
marker=KAIROS-HOSTILE-M
{ printf '%s' "$marker"; head -c $((1024 * 1024 - ${#marker})) < <(yes kairos-hostile-disk); } >victim.img
victim_before=$(sha256sum victim.img | cut -d' ' -f1)

# Without root=, /init loads no virtio driver: the module has the device.
write_config vm.json 1 256 \
	"$BASE_CMDLINE kairos.init=run:/usr/bin/kairos-hostile-selftest kairos.args=0xd0000000" \
	"$KAIROS_TEST_INITRAMFS_KAIROS" '"drives": [{"id": "victim", "path": "victim.img"}]'
run_guest vm.json
expect_rc 0
expect_stderr "guest powered off"
expect_value module "kairos ok"
expect_value run "/usr/bin/kairos-hostile-selftest exit=0"
expect_value hostile-insmod ok
expect_value hostile-done 17

# A broken ring: the device stops serving it until the driver resets it.
for broken in loop next-out-of-range head-out-of-range zero-length outside-ram huge-length wraps \
	readable-after-writable avail-jump indirect-bad-size indirect-nested ring-outside-ram kairos-page; do
	expect_value "hostile-$broken" needs-reset
done
# A well-formed request the device cannot do: an error status.
expect_value hostile-bad-type unsupp
expect_value hostile-read-past-end ioerr
expect_value hostile-write-past-end ioerr
# And after all of it, the device still works.
expect_value hostile-valid-read ok
expect_value hostile-marker "$marker"

kairos_page=$(guest_value hostile-kairos-page-gpa)
if [[ $kairos_page =~ ^0x[0-9a-f]+$ ]] && [ "$kairos_page" != 0x0 ]; then
	pass "the shared-info page ($kairos_page) was among the addresses tried"
else
	fail "no shared-info page address from the guest: '$kairos_page'"
fi
# At least the 12 rings broken while running are counted as errors.
expect_stat '.devices[0].errors' 12
expect_stat '.devices[0].requests' 1
if [ "$(sha256sum victim.img | cut -d' ' -f1)" = "$victim_before" ]; then
	pass "the drive's image is unchanged"
else
	fail "the drive's image changed"
fi
finish
