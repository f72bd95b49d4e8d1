#!/usr/bin/env bash
# reboot -f (reboot=k, through the i8042) ends kairos with 0; a kernel panic
# (panic=-1 resets at once) ends it with 3 and says why; the same banners
# typed in the guest's shell decide nothing (issue 12, #4: only the
# kernel's own console output, the UART's polled path, is watched).
source "$(dirname "$0")/lib.sh"
require_kvm

write_config reset.json 2 256 "$BASE_CMDLINE kairos.init=reboot"
run_guest reset.json
expect_rc 0
expect_stderr "guest reset"

write_config panic.json 1 256 "$BASE_CMDLINE kairos.init=panic"
run_guest panic.json
expect_rc 3
expect_stderr "guest kernel panic"
expect_output "Kernel panic - not syncing"

log "boot 3: a program prints the panic and halt banners, then reboots"
mv out.txt out-panic.txt
write_config typed.json 1 256 "$BASE_CMDLINE kairos.init=shell"
# The commands go in once the shell shows its prompt: typed earlier, they
# can be lost to the console's open and the shell's own terminal set-up.
cat >inside.sh <<SCRIPT
#!/bin/sh
# On tmpfs: the work folder is a 9p share, where mkfifo makes no FIFO.
fifo=\$(mktemp -u /dev/shm/kairos-typed.XXXXXX)
mkfifo "\$fifo" || exit 99
"$KAIROS_BIN" run typed.json --stats stats.json <"\$fifo" >guest.txt 2>kairos.txt &
pid=\$!
exec 3>"\$fifo"
rm -f "\$fifo"
for i in \$(seq 1 600); do
	grep -q '/ # ' guest.txt 2>/dev/null && break
	kill -0 \$pid 2>/dev/null || break
	sleep 0.5
done
printf '%s\\n' 'echo "Kernel panic - not syncing: typed by a user"' 'echo "reboot: System halted"' 'reboot -f' >&3
wait \$pid
code=\$?
exec 3>&-
cat kairos.txt >&2
exit \$code
SCRIPT
chmod +x inside.sh
KAIROS_TEST_RETRY_TRIPLE_FAULT=1 run_in_kvm timeout --kill-after=10 300 ./inside.sh
mv guest.txt out.txt
log "kairos exited with $RC: $(tail -n 1 err.txt)"
expect_rc 0
expect_output "Kernel panic - not syncing: typed by a user"
expect_stderr "guest reset"
expect_no_stderr "panic"
expect_no_stderr "halted"
finish
