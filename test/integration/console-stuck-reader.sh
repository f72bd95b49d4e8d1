#!/usr/bin/env bash
# A console reader that never reads (issue 12, item 2) must not freeze the
# VMM: with stdout into a FIFO whose reader only sleeps and the guest
# printing without pause, SIGTERM still stops kairos within seconds, with
# its last line and stats, and the stats count the console bytes dropped.
# Before the fix the vCPU blocked in write() with the UART lock held and
# kairos ran on until the pipe drained.
source "$(dirname "$0")/lib.sh"
require_kvm
require_jq

cat >print-forever <<'SCRIPT'
#!/bin/sh
# In the guest: print as fast as the console takes it, for ever.
echo "KAIROS-GUEST printing"
exec yes "KAIROS-BUSY the quick brown fox jumps over the lazy dog 0123456789"
SCRIPT
chmod +x print-forever
"$KAIROS_SOURCE_DIR/guest/image/build-initramfs" --output printer.cpio \
	--extra print-forever:/usr/bin/print-forever >/dev/null
write_config vm.json 1 256 "$BASE_CMDLINE kairos.init=run:/usr/bin/print-forever kairos.modules=0" \
	"$WORK/printer.cpio" '"console": {"input": "none"}'

cat >inside.sh <<'SCRIPT'
#!/bin/bash
# Inside the KVM machine. $1: the kairos binary.
kairos=$1
mkfifo console.fifo
sleep 600 <console.fifo & # opens the FIFO for reading, then never reads
reader=$!
"$kairos" run vm.json --stats stats.json >console.fifo 2>kairos.txt &
pid=$!
# Bytes kairos has written (/proc/PID/io wchar): the console to the FIFO,
# and a line or two to stderr.
written() { sed -n 's/^wchar: //p' "/proc/$pid/io" 2>/dev/null || echo 0; }
# The FIFO holds 64 KiB: once kairos wrote that, the guest is printing and
# the reader is stuck. Time 8 KiB -> 64 KiB to know the guest's rate.
for _ in $(seq 1 400); do
	[ "$(written)" -ge 8192 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.5
done
from=$EPOCHREALTIME
for _ in $(seq 1 400); do
	[ "$(written)" -ge 65536 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.5
done
to=$EPOCHREALTIME
# 56 KiB took (to - from); twice that again overflows the 64 KiB buffer.
fill_s=$(awk -v a="$from" -v b="$to" 'BEGIN { s = 2 * (b - a) + 2; print (s > 120 ? 120 : s) }')
echo "fifo-full-after-8k-s=$(awk -v a="$from" -v b="$to" 'BEGIN { print b - a }') waiting=$fill_s"
sleep "$fill_s"
sent=$EPOCHREALTIME
kill -TERM "$pid"
exited=no
for _ in $(seq 1 100); do # 10 s
	if ! kill -0 "$pid" 2>/dev/null; then
		exited=yes
		break
	fi
	sleep 0.1
done
echo "exit-after-sigterm-s=$(awk -v a="$sent" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
echo "exited-within-10s=$exited"
# The old VMM waits for the reader: let it go, so that this script ends.
kill "$reader" 2>/dev/null
wait "$reader" 2>/dev/null
for _ in $(seq 1 300); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -KILL "$pid" 2>/dev/null
wait "$pid"
code=$?
echo "kairos-exit=$code"
cat kairos.txt >&2
exit 0
SCRIPT
chmod +x inside.sh
run_in_kvm ./inside.sh "$KAIROS_BIN"
log "$(grep -E '^(fifo-full|exit-after)' out.txt | tr '\n' ' ')"

if grep -q "exited-within-10s=yes" out.txt; then
	pass "kairos exited within 10 s of SIGTERM with a stuck console reader"
else
	fail "kairos still ran 10 s after SIGTERM: $(grep -E '^(exit|fifo)' out.txt | tr '\n' ' ')"
fi
if grep -q "kairos-exit=143" out.txt; then pass "exit code 143"; else fail "$(grep kairos-exit out.txt)"; fi
if grep -q "stopped by signal" kairos.txt; then pass "kairos said it stopped by signal"; else fail "no stop line"; fi
if grep -q "dropping guest console output" kairos.txt; then
	pass "kairos warned that console output is dropped"
else
	fail "no warning about dropped console output"
fi
if [ "$(grep -c "dropping guest console output" kairos.txt)" -le 1 ]; then pass "one warning"; else fail "more than one warning"; fi
expect_stat '.exit.code' 143 143
expect_stat '.console.dropped_bytes' 1
log "console: $(stat_value '.console.dropped_bytes') of $(stat_value '.console.transmitted_bytes') bytes dropped"
cp kairos.txt err.txt # kairos's messages, for finish's diagnostics
finish
