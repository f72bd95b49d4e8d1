#!/usr/bin/env bash
# reboot -f (reboot=k, through the i8042) ends kairos with 0; a kernel panic
# (panic=-1 resets at once) ends it with 3 and says why.
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
finish
