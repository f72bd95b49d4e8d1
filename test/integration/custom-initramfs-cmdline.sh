#!/usr/bin/env bash
# A user's own initramfs (built with the project's build-initramfs plus a
# program of theirs) and a custom kernel command line, on 4 vCPUs / 512 MiB.
source "$(dirname "$0")/lib.sh"
require_kvm

cat >hello.sh <<'SCRIPT'
#!/bin/sh
echo "KAIROS-GUEST custom-program=ran-with-$#-args"
echo "KAIROS-GUEST custom-cpus=$(grep -c ^processor /proc/cpuinfo)"
SCRIPT
chmod +x hello.sh
"$KAIROS_SOURCE_DIR/guest/image/build-initramfs" --output custom.cpio --extra hello.sh:/usr/bin/hello >/dev/null
write_config vm.json 4 512 "$BASE_CMDLINE kairos.init=run:/usr/bin/hello kairos.args=a,b custom.marker=42" "$WORK/custom.cpio"
run_guest vm.json
expect_rc 0
expect_value custom-program ran-with-2-args
expect_value custom-cpus 4
expect_value cpus 4
expect_between mem_kib $((512 * 1024 * 85 / 100)) $((512 * 1024))
if guest_value cmdline | grep -qw "custom.marker=42"; then pass "custom cmdline reached the guest"; else fail "cmdline is '$(guest_value cmdline)'"; fi
finish
