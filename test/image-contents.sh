#!/usr/bin/env bash
# The guest images hold what README's "The default guest image" says:
# initramfs-kairos.cpio has kairos.ko in /lib/modules/kairos/ (which /init
# loads), initramfs.cpio has no module there. Usage: image-contents.sh BUILD_DIR
set -euo pipefail
build=$1
failures=0
check() {  # check IMAGE PATH present|absent
	local listing
	listing=$(cpio -it --quiet <"$build/guest/$1")
	if grep -qx -- "$2" <<<"$listing"; then
		[ "$3" = present ] && echo "ok: $1 has $2" && return
	else
		[ "$3" = absent ] && echo "ok: $1 has no $2" && return
	fi
	echo "FAIL: $1: $2 should be $3" >&2
	failures=$((failures + 1))
}
for image in initramfs.cpio initramfs-kairos.cpio; do
	if [ ! -e "$build/guest/$image" ]; then
		echo "SKIPPED: $build/guest/$image was not built" >&2
		exit 77
	fi
done
check initramfs-kairos.cpio lib/modules/kairos/kairos.ko present
check initramfs.cpio lib/modules/kairos/kairos.ko absent
check initramfs.cpio init present
check initramfs-kairos.cpio init present
# The ACPI power button's handler (kairos ctl shutdown), in both.
for image in initramfs.cpio initramfs-kairos.cpio; do
	check "$image" etc/acpi/PWRF/00000080 present
	check "$image" lib/modules/input/01-button.ko present
done
exit "$failures"
