#!/usr/bin/env bash
# A host that floods the console (issue 12, #10: `yes | kairos run`) does
# not starve a 1-vCPU guest that never reads it. Before, the guest kernel
# spent its time taking bytes from the UART (two exits each) as fast as
# stdin gave them and never reached /init (here: 300 s, 454 B/s taken).
# Now input goes a FIFO-full at a time, no faster than the line the guest
# set (9600 baud here: console=ttyS0) and with a rest of three times what
# the guest took to read the last batch, so the guest boots to its
# power-off. Reports the UART's exits, the bytes it took from the host and
# the boot's time against a boot without input.
source "$(dirname "$0")/lib.sh"
require_kvm
require_jq

# A generous bound: a quiet boot takes ~20 s of the emulated machine, and
# QEMU with the same flood powered off after 152 s (issue 12).
limit_s=300
baud=9600
write_config vm.json 1 256 "$BASE_CMDLINE kairos.init=report"
# The flood starts inside the KVM machine: with-kvm keeps a copy of its own
# stdin, so an endless stream cannot go through it.
cat >flood.sh <<SCRIPT
#!/bin/sh
yes | timeout --kill-after=10 $limit_s "$KAIROS_BIN" run vm.json --stats stats.json >guest.txt 2>kairos.txt
code=\$?
cat kairos.txt >&2
exit \$code
SCRIPT
chmod +x flood.sh
# The same boot without input, for comparison.
run_guest vm.json
quiet_ms=$(stat_value .runtime_ms)

log "booting vm.json with 'yes' on its stdin (at most $limit_s s)"
rm -f stats.json
KAIROS_TEST_RETRY_TRIPLE_FAULT=1 in_kvm /dev/null ./flood.sh
mv guest.txt out.txt 2>/dev/null || : >out.txt
record_boot vm.json

expect_rc 0
expect_stderr "guest powered off"
expect_output "KAIROS-GUEST init-done"

runtime_ms=$(stat_value .runtime_ms)
accesses=$(stat_value .console.uart.register_accesses)
received=$(stat_value .console.uart.received_bytes)
interrupts=$(stat_value .console.uart.interrupts)
exits=$(stat_value '.vcpus[0].exits')
if [[ $runtime_ms =~ ^[0-9]+$ ]] && ((runtime_ms > 0)) && [[ $accesses =~ ^[0-9]+$ ]]; then
	log "figures: ${runtime_ms} ms (without input: ${quiet_ms:-?} ms); UART: $accesses register accesses" \
	    "($((accesses * 1000 / runtime_ms))/s), $received bytes taken from stdin" \
	    "($((received * 1000 / runtime_ms)) B/s), $interrupts interrupts; vCPU exits $exits" \
	    "($((exits * 1000 / runtime_ms))/s)"
	# The flood reached the guest, so this test tested something...
	expect_stat .console.uart.received_bytes 1
	# ...and never faster than the line: 10 bits a character (8N1) at the
	# guest's baud rate, plus one FIFO-full (16) the line may have
	# delivered before the guest first read.
	expect_stat .console.uart.received_bytes 1 $((runtime_ms * baud / 10 / 1000 + 16))
else
	fail "no figures in --stats: runtime_ms '$runtime_ms', console.uart '$(stat_value .console.uart)'"
fi
finish
