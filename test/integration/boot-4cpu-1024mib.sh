#!/usr/bin/env bash
# Four vCPUs (MP table/MADT + IOAPIC) and 1 GiB (e820) all reach the guest.
source "$(dirname "$0")/lib.sh"
require_kvm

write_config vm.json 4 1024 "$BASE_CMDLINE kairos.init=report"
run_guest vm.json
expect_rc 0
expect_value cpus 4
expect_between mem_kib $((1024 * 1024 * 9 / 10)) $((1024 * 1024))
finish
