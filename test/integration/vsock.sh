#!/usr/bin/env bash
# virtio-vsock on the kernel's vhost-vsock (issue 10): inside the KVM
# machine, with the vhost_vsock module loaded, a guest listens on AF_VSOCK
# and a host program connects to it at the guest's cid; each sends 10 MiB
# of its own pattern while receiving the other's, and both checksums match
# what was sent. While the VM runs, `kairos check` of the same config is
# refused in one line with exit 2: the cid is in use. Kairos exits 0 at
# the guest's power-off, and --stats counts the device's interrupts. Then
# the guest unbinds and binds its driver (a device reset: Kairos stops
# vhost, and starts it again on the new rings) and 1 MiB goes each way on
# the next port.
source "$(dirname "$0")/lib.sh"
require_kvm
require_jq
: "${KAIROS_VSOCK_PROGRAM:?}" "${KAIROS_TEST_INITRAMFS_VSOCK:?}"
if [ ! -s "$KAIROS_TEST_INITRAMFS_VSOCK" ] || ! grep -qa 'lib/modules/vsock/' "$KAIROS_TEST_INITRAMFS_VSOCK"; then
	echo "SKIPPED: $TEST_NAME needs the guest image with the kernel's vsock driver" \
	     "(KAIROS_TEST_INITRAMFS_VSOCK='$KAIROS_TEST_INITRAMFS_VSOCK'; made with" \
	     "build-initramfs --vsock-modules from /lib/modules/$KAIROS_GUEST_KERNEL_VERSION)" >&2
	exit 77
fi

cid=$((1000 + RANDOM % 30000)) # not another test's (a cid is host-wide)
port=1234
bytes=$((10 * 1024 * 1024))
write_config vm.json 1 256 \
	"$BASE_CMDLINE kairos.init=run:/usr/bin/kairos-vsock-selftest kairos.args=$port,$bytes" \
	"$KAIROS_TEST_INITRAMFS_VSOCK" "\"vsock\": {\"cid\": $cid}"

# What runs in the KVM machine (as root there): load vhost_vsock, boot the
# guest, and while it listens, check the config again and connect. Every
# step is bounded well below in_kvm's 420 s.
cat >in-machine.sh <<'SCRIPT'
set -u
kairos=$1 program=$2 cid=$3 port=$4 bytes=$5
if ! modprobe vhost_vsock 2>modprobe.err || [ ! -c /dev/vhost-vsock ]; then
	echo "modprobe vhost_vsock: $(cat modprobe.err) (/dev/vhost-vsock: $(ls -l /dev/vhost-vsock 2>&1))" >skip.txt
	exit 77
fi
deadline=$((SECONDS + 380))
timeout --kill-after=10 360 "$kairos" run vm.json --stats stats.json --events events.jsonl \
	>console.txt 2>kairos.err </dev/null &
run=$!
while ! grep -q 'vsock-listening=' console.txt 2>/dev/null && kill -0 "$run" 2>/dev/null; do
	sleep 0.2
done
if grep -q 'vsock-listening=' console.txt; then
	"$kairos" check vm.json >check.out 2>check.err
	echo $? >check.rc
	started=$(date +%s.%N)
	left=$((deadline - SECONDS))
	[ "$left" -gt 10 ] || left=10
	timeout "$left" "$program" connect "$cid" "$port" "$bytes" >host.txt 2>host.err
	echo $? >host.rc
	echo "$started $(date +%s.%N)" >host.times
	# After the guest's reset of the device.
	left=$((deadline - SECONDS))
	[ "$left" -gt 10 ] || left=10
	timeout "$left" "$program" connect "$cid" $((port + 1)) 1048576 >host2.txt 2>host2.err
	echo $? >host2.rc
fi
wait "$run"
echo $? >kairos.rc
SCRIPT

log "booting vm.json (vsock cid $cid) and connecting from the host"
run_in_kvm bash in-machine.sh "$KAIROS_BIN" "$KAIROS_VSOCK_PROGRAM" "$cid" "$port" "$bytes"
if [ "$RC" -eq 77 ] && [ -f skip.txt ]; then
	echo "SKIPPED: $TEST_NAME needs the host kernel's vhost-vsock in the KVM machine: $(cat skip.txt)" >&2
	exit 77
fi
if [ "$RC" -ne 0 ] || [ ! -f kairos.rc ]; then
	fail "the script in the KVM machine ended with $RC: $(tail -n 5 err.txt)"
	finish
fi
# From here the guest's console and kairos's messages are the boot's.
cp console.txt out.txt
cp kairos.err err.txt
RC=$(cat kairos.rc)
record_boot vm.json
expect_rc 0
expect_stderr "guest powered off"
expect_value run "/usr/bin/kairos-vsock-selftest exit=0"
modules=$(guest_value vsock-modules)
if [ "${modules:-0}" -ge 3 ]; then pass "the guest loaded $modules vsock modules"; else fail "vsock-modules=$modules"; fi

# The host's view, as "KAIROS-GUEST key=value" lines as well.
host_value() { sed -n "s/^KAIROS-GUEST $1=//p" host.txt 2>/dev/null | head -n 1; }
if [ "$(cat host.rc 2>/dev/null)" = 0 ]; then
	pass "the host program exchanged $bytes bytes each way ($(host_value vsock-mib-per-s) MiB/s both ways together)"
else
	fail "the host program exited $(cat host.rc 2>/dev/null || echo '(not run)'): $(cat host.err 2>/dev/null)"
fi
expect_value vsock-bytes "$bytes/$bytes"
guest_sent=$(guest_value vsock-sent-fnv)
host_sent=$(host_value vsock-sent-fnv)
if [ -n "$host_sent" ] && [ "$(guest_value vsock-received-fnv)" = "$host_sent" ] &&
	[ "$(guest_value vsock-expected-fnv)" = "$host_sent" ]; then
	pass "host to guest: 10 MiB, checksum $host_sent on both ends"
else
	fail "host to guest: host sent $host_sent, guest received $(guest_value vsock-received-fnv)," \
		"expected $(guest_value vsock-expected-fnv)"
fi
if [ -n "$guest_sent" ] && [ "$(host_value vsock-received-fnv)" = "$guest_sent" ] &&
	[ "$(host_value vsock-expected-fnv)" = "$guest_sent" ]; then
	pass "guest to host: 10 MiB, checksum $guest_sent on both ends"
else
	fail "guest to host: guest sent $guest_sent, host received $(host_value vsock-received-fnv)," \
		"expected $(host_value vsock-expected-fnv)"
fi
if [ -f host.times ]; then
	read -r started ended <host.times
	log "measured: $((2 * bytes / 1048576)) MiB moved in $(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.1f", b - a }') s from connect to close" \
	    "(the emulated machine; a number, not a check)"
fi

# The second exchange, after the reset: each end checked the other's bytes.
if [ -n "$(guest_value vsock-rebound)" ] && [ "$(cat host2.rc 2>/dev/null)" = 0 ]; then
	pass "after a device reset ($(guest_value vsock-rebound) unbound and bound): 1 MiB each way, checksums ok"
else
	fail "after a device reset: rebound '$(guest_value vsock-rebound)', host exit" \
		"$(cat host2.rc 2>/dev/null || echo '(not run)'): $(cat host2.err 2>/dev/null)"
fi

# The same cid while the VM holds it: one line, exit 2.
check_message="vsock: cid $cid is in use by another VM (choose another vsock.cid)"
if [ "$(cat check.rc 2>/dev/null)" = 2 ] && [ "$(wc -l <check.err)" -eq 1 ] && grep -qF "$check_message" check.err; then
	pass "kairos check of the running VM's config: exit 2, '$check_message'"
else
	fail "kairos check while the VM ran: exit $(cat check.rc 2>/dev/null), '$(cat check.err 2>/dev/null)'"
fi

expect_stat '.devices | length' 1 1
expect_stat '.devices[0].interrupts' 1
if [ "$(stat_value '.devices[0].type')" = virtio-vsock ]; then
	pass "stats: devices[0] is virtio-vsock"
else
	fail "stats: devices[0] is '$(jq -c '.devices[0]' stats.json 2>&1)'"
fi
finish
