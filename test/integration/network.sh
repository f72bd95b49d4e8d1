#!/usr/bin/env bash
# virtio-net (issue 10): in a network namespace of its own (always deleted),
# the test makes a TAP with the host's address and runs kairos there on it.
# The guest configures eth0 (/init, kairos.ip=) and pings the host; the host
# pings the guest and opens a TCP connection to it; --stats counts the
# frames. A second guest, with
# kairos.ip= but no network device, boots offline and powers off.
#
# Then 100 MiB over TCP each way (busybox nc both ends, matching
# checksums; KAIROS_NET_TEST_MIB sets another size in MiB, 0 leaves the
# transfer out). With-kvm boots again if the guest triple-faults, up to
# three attempts: in the first seconds of traffic the emulated machine's
# guest does that now and then (2 of 12 attempts; README, Network).
source "$(dirname "$0")/lib.sh"
require_kvm
require_jq
if [ -z "${KAIROS_GUEST_KERNEL_VERSION:-}" ] ||
	[ ! -r "/lib/modules/$KAIROS_GUEST_KERNEL_VERSION/modules.dep" ]; then
	echo "SKIPPED: $TEST_NAME needs the guest kernel's modules (virtio_net) in" \
	     "/lib/modules/${KAIROS_GUEST_KERNEL_VERSION:-?} (package linux-image of that release)" >&2
	exit 77
fi
if ! busybox --list 2>/dev/null | grep -qx nc; then
	echo "SKIPPED: $TEST_NAME needs busybox (package busybox-static) with nc and ping on the host" >&2
	exit 77
fi

BYTES=$((${KAIROS_NET_TEST_MIB:-100} * 1024 * 1024))
HOST_IP=10.0.2.2
GUEST_IP=10.0.2.15
TAP=ktap0

"$KAIROS_SOURCE_DIR/guest/image/build-initramfs" --output net.cpio \
	--kernel-version "$KAIROS_GUEST_KERNEL_VERSION" --net-modules \
	--extra "$KAIROS_SOURCE_DIR/guest/selftest/kairos-net-selftest:/usr/bin/kairos-net-selftest" >/dev/null
rx_sha256=$(head -c "$BYTES" < <(yes kairos-net-host-pattern) | sha256sum | cut -d' ' -f1)
tx_sha256=$(head -c "$BYTES" < <(yes kairos-net-guest-pattern) | sha256sum | cut -d' ' -f1)

write_config vm-net.json 1 256 \
	"$BASE_CMDLINE ${KAIROS_NET_TEST_CMDLINE:-} kairos.ip=$GUEST_IP/24 kairos.init=run:/usr/bin/kairos-net-selftest kairos.args=$HOST_IP,$BYTES" \
	"$PWD/net.cpio" "\"network\": [{\"id\": \"net0\", \"tap\": \"$TAP\", \"mac\": \"02:4b:41:49:52:01\"}]"

# The host's half, run as root in the KVM machine: the namespace, the TAP
# owned by root (kairos attaches to it after dropping its capabilities),
# kairos in the background, then pings and the transfers. Exit 97: no
# namespace or TAP could be made (reported as a skip).
cat >net-host.sh <<SCRIPT
#!/bin/bash
set -u
# The KVM machine loads only its own modules: tun is Debian's module too.
[ -e /dev/net/tun ] || modprobe tun || exit 97
ns=kairos-net-test-\$\$
fifo=
ip netns add "\$ns" || exit 97
kairos=
cleanup() {
	[ -n "\$kairos" ] && kill "\$kairos" 2>/dev/null
	ip netns delete "\$ns"
	rm -f "\$fifo"
}
trap cleanup EXIT
in_ns() { ip netns exec "\$ns" "\$@"; }
in_ns ip link set lo up
in_ns ip tuntap add dev $TAP mode tap user "\$(id -u)" || exit 97
in_ns ip addr add $HOST_IP/24 dev $TAP
in_ns ip link set $TAP up
# The guest's upload: one connection on port 5002. busybox nc shuts its
# side down at the end of its stdin, which would end the guest's nc before
# it sent anything: a FIFO opened read-write never ends (on tmpfs: the work
# folder is a 9p share, where mkfifo makes no FIFO).
fifo=\$(mktemp -u /dev/shm/kairos-net.XXXXXX)
mkfifo "\$fifo" || exit 98
(in_ns busybox nc -l -p 5002 <>"\$fifo" | sha256sum | cut -d' ' -f1 >host-rx.sha256) &
receiver=\$!
in_ns timeout --kill-after=10 330 "$KAIROS_BIN" run vm-net.json --stats stats.json --events events.jsonl \
	>guest.txt 2>kairos.txt &
kairos=\$!
for _ in \$(seq 1 600); do
	grep -q '^KAIROS-GUEST net-ready' guest.txt 2>/dev/null && break
	kill -0 "\$kairos" 2>/dev/null || break
	sleep 0.5
done
if in_ns busybox ping -c 3 -W 10 $GUEST_IP >ping.txt 2>&1; then
	echo "host-ping-guest=ok" >host.txt
else
	echo "host-ping-guest=failed" >host.txt
fi
# A guest that triple-faults ends the run; the emulated machine has kept
# such a kairos stuck in its exit, and with-kvm then waited out its whole
# --timeout before booting again. So its report bounds the waits below.
faulted() { grep -q '^kairos: guest triple fault' kairos.txt 2>/dev/null; }
running() { kill -0 "\$kairos" 2>/dev/null && ! faulted; }
start=\$(date +%s%N)
# A pipe, not a process substitution: the KVM machine's root has no
# /dev/fd. yes ends on SIGPIPE (no pipefail here). Watched: with kairos
# gone its TCP peer is gone too, and nc would wait out TCP's
# retransmissions, minutes, so it is stopped then.
yes kairos-net-host-pattern | head -c $BYTES | in_ns busybox nc $GUEST_IP 5001 &
sender=\$!
while kill -0 "\$sender" 2>/dev/null && running; do sleep 0.5; done
running || kill "\$sender" 2>/dev/null
wait "\$sender"
echo "host-send-exit=\$?" >>host.txt
echo "host-send-ms=\$(( (\$(date +%s%N) - start) / 1000000 ))" >>host.txt
while running; do sleep 0.5; done
# After a triple fault: 20 s for kairos to end, then exit 4 as it would
# have (with-kvm retries on its "guest triple fault" line).
code=4
for _ in \$(seq 1 40); do
	kill -0 "\$kairos" 2>/dev/null || { wait "\$kairos"; code=\$?; break; }
	sleep 0.5
done
cp stats.json stats-net.json
kairos=
echo "guest-send-ms=\$(( (\$(date +%s%N) - start) / 1000000 ))" >>host.txt
# The receiver ends with the guest's connection; bounded, should it not.
for _ in \$(seq 1 20); do kill -0 "\$receiver" 2>/dev/null || break; sleep 0.5; done
kill "\$receiver" 2>/dev/null
cat kairos.txt >&2
exit \$code
SCRIPT
chmod +x net-host.sh

log "booting vm-net.json in namespace with TAP $TAP"
rm -f stats.json events.jsonl host.txt host-rx.sha256
KAIROS_TEST_RETRY_TRIPLE_FAULT=1 in_kvm /dev/null ./net-host.sh
if [ "$RC" = 97 ]; then
	echo "SKIPPED: $TEST_NAME could not make a network namespace or TAP in the KVM machine:" \
	     "$(tail -n 3 err.txt)" >&2
	exit 77
fi
mv guest.txt out.txt 2>/dev/null || : >out.txt
record_boot vm-net.json
host_value() { sed -n "s/^$1=//p" host.txt 2>/dev/null | head -n 1; }
expect_rc 0
expect_stderr "guest powered off"
expect_value net "eth0 $GUEST_IP/24"
expect_value net-mac 02:4b:41:49:52:01
expect_value net-ping-host ok
if [ "$(host_value host-ping-guest)" = ok ]; then
	pass "the host pinged the guest"
else
	fail "the host could not ping the guest: $(cat ping.txt 2>&1)"
fi
# With no bytes, still one TCP connection to the guest (its empty checksum).
expect_value net-rx-sha256 "$rx_sha256"
if [ "$BYTES" = 0 ]; then
	log "bulk transfer not run (KAIROS_NET_TEST_MIB=0)"
	expect_value net-tx skipped
else
	expect_value net-tx-exit 0
	if [ "$(cat host-rx.sha256 2>/dev/null)" = "$tx_sha256" ]; then
		pass "the guest's $((BYTES / 1024 / 1024)) MiB arrived with their checksum"
	else
		fail "the guest's upload has checksum '$(cat host-rx.sha256 2>&1)', expected $tx_sha256"
	fi
fi
expect_value run "/usr/bin/kairos-net-selftest exit=0"
send_ms=$(host_value host-send-ms)
both_ms=$(host_value guest-send-ms)
if [ -n "$send_ms" ] && [ "$send_ms" -gt 0 ]; then
	log "host to guest: $((BYTES / 1024 / 1024)) MiB in $send_ms ms," \
	    "$((BYTES * 1000 / 1024 / 1024 / send_ms)) MiB/s; guest to host and power-off: $((both_ms - send_ms)) ms"
fi
expect_stat '.devices | length' 1 1
if [ "$(stat_value '.devices[0].id')/$(stat_value '.devices[0].type')" = net0/virtio-net ]; then
	pass "stats: devices[0] is virtio-net net0"
else
	fail "stats: devices[0] is '$(jq -c '.devices[0]' stats.json 2>&1)'"
fi
# Pings and ARP at least, both ways.
expect_stat '.devices[0].requests' 6
expect_stat '.devices[0].bytes_read' "$((BYTES > 0 ? BYTES : 1))"
expect_stat '.devices[0].bytes_written' "$((BYTES > 0 ? BYTES : 1))"
expect_stat '.devices[0].interrupts' 1
expect_stat '.devices[0].notifications' 1
# EVENT_IDX at work: under bulk traffic the driver polls (NAPI) with its
# used_event behind, and interrupts it did not ask for are not sent.
if [ "$BYTES" -gt 0 ]; then
	expect_stat '.devices[0].interrupts_suppressed' 1
fi

# No network device: kairos.ip= finds no eth0 and the guest boots on.
write_config vm-offline.json 1 128 "$BASE_CMDLINE kairos.ip=$GUEST_IP/24" "$PWD/net.cpio"
run_guest vm-offline.json
expect_rc 0
expect_stderr "guest powered off"
expect_value net none
expect_output "KAIROS-GUEST init-done"
finish
