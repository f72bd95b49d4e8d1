#!/usr/bin/env bash
# A line typed on kairos's stdin reaches the guest shell through the 8250,
# and the guest's answer comes back on stdout.
source "$(dirname "$0")/lib.sh"
require_kvm

# shellcheck disable=SC2016 # for the guest's shell to expand, not this one
printf 'echo "typed-$((6 * 7))-back"\npoweroff -f\n' >input.txt
write_config vm.json 1 256 "$BASE_CMDLINE kairos.init=shell"
run_guest_typing vm.json input.txt
expect_rc 0
# The shell computed 42: the answer came from the guest, not from an echo
# of our input (which contains the expression, not its value).
expect_output "typed-42-back"
finish
