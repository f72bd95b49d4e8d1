#!/usr/bin/env bash
# SIGTERM stops a running VM cleanly: exit code 143, stats still written.
source "$(dirname "$0")/lib.sh"
require_kvm

write_config vm.json 1 256 "$BASE_CMDLINE kairos.init=shell" "$KAIROS_TEST_INITRAMFS" \
	'"console": {"input": "none"}'
cat >inside.sh <<SCRIPT
#!/bin/sh
# Inside the KVM machine: boot, wait for the guest's shell, then SIGTERM.
"$KAIROS_BIN" run vm.json --stats stats.json >guest.txt 2>kairos.txt &
pid=\$!
# Stop waiting as soon as kairos is gone: a guest that died in early boot
# must not keep this loop (a fork per step, slow in TCG) past with-kvm's
# own timeout.
for i in \$(seq 1 600); do
	grep -q "KAIROS-GUEST init-done" guest.txt 2>/dev/null && break
	kill -0 \$pid 2>/dev/null || break
	sleep 0.5
done
kill -TERM \$pid 2>/dev/null
wait \$pid
code=\$?
echo "kairos-exit=\$code"
# kairos's messages on stderr too, and its exit code as ours: a guest that
# triple-faulted in early boot is then retried like run_guest's (lib.sh).
cat kairos.txt >&2
exit \$code
SCRIPT
chmod +x inside.sh
KAIROS_TEST_RETRY_TRIPLE_FAULT=1 run_in_kvm ./inside.sh
if grep -q "kairos-exit=143" out.txt; then pass "SIGTERM gave exit code 143"; else fail "$(cat out.txt)"; fi
if grep -q "stopped by signal" kairos.txt; then pass "kairos said it stopped by signal"; else fail "kairos stderr: $(cat kairos.txt)"; fi
if grep -q '"code": 143' stats.json; then pass "stats written on SIGTERM"; else fail "no stats after SIGTERM"; fi
expect_confined vm.json
mv guest.txt out.txt  # the guest console, for finish's diagnostics
finish
