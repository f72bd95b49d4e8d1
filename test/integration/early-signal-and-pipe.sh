#!/usr/bin/env bash
# Stops that come from the host at awkward moments (issue 12, items 9 and
# 3): SIGTERM 0.3 s after start, while the VM is still being set up, stops
# it the one way (exit 143, the last line, stats); and a console reader
# that goes away (kairos run | head -c 200) does not kill kairos with
# SIGPIPE: the guest runs to its power-off, stats written.
source "$(dirname "$0")/lib.sh"
require_kvm

write_config shell.json 1 256 "$BASE_CMDLINE kairos.init=shell" "$KAIROS_TEST_INITRAMFS" \
	'"console": {"input": "none"}'
write_config report.json 1 128 "$BASE_CMDLINE kairos.init=report"
cat >inside.sh <<SCRIPT
#!/bin/bash
# Inside the KVM machine.
"$KAIROS_BIN" run shell.json --stats early.json >early-guest.txt 2>early.txt &
pid=\$!
sleep 0.3
kill -TERM \$pid
wait \$pid
echo "early-exit=\$?"
"$KAIROS_BIN" run report.json --stats pipe.json 2>pipe.txt | head -c 200 >/dev/null
echo "pipe-exit=\${PIPESTATUS[0]}"
SCRIPT
chmod +x inside.sh
run_in_kvm ./inside.sh

if grep -q "early-exit=143" out.txt; then pass "early SIGTERM gave exit code 143"; else fail "$(cat out.txt)"; fi
if grep -q "stopped by signal" early.txt; then
	pass "kairos said it stopped by signal"
else
	fail "early SIGTERM: kairos stderr: '$(cat early.txt)'"
fi
if grep -q '"code": 143' early.json 2>/dev/null; then pass "stats written on an early SIGTERM"; else fail "no stats after an early SIGTERM"; fi
expect_confined shell.json early.json

if grep -q "pipe-exit=0" out.txt; then pass "a closed console pipe did not kill kairos"; else fail "$(cat out.txt)"; fi
if grep -q "guest powered off" pipe.txt; then pass "kairos said the guest powered off"; else fail "pipe: kairos stderr: '$(cat pipe.txt)'"; fi
if grep -q '"code": 0' pipe.json 2>/dev/null; then pass "stats written with a closed console pipe"; else fail "no stats with a closed console pipe"; fi
expect_confined report.json pipe.json
finish
