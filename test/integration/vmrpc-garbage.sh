#!/usr/bin/env bash
# A guest that feeds the monitor garbage through the VMRPC ring (issue 4):
# kairos.ko with test_hooks=1 posts 2000 requests of random op, id and
# deadline, then publishes a producer index far beyond the ring. The monitor
# must answer with error completions and count them (never crash, hang or
# grow without bound), tell the guest its index is broken (EBADINDEX), and
# keep serving the same ring afterwards: 2000 timers of the demo then fire
# exactly once each, none early. The guest side is
# /usr/bin/kairos-garbage-selftest in KAIROS_TEST_INITRAMFS_KAIROS.
source "$(dirname "$0")/lib.sh"
require_kvm
require_kairos_image "kairos.ko and kairos-demo.ko"
require_jq

GARBAGE=2000
COUNT=2000
write_config vm.json 1 256 \
	"$BASE_CMDLINE kairos.init=run:/usr/bin/kairos-garbage-selftest kairos.args=$GARBAGE,$COUNT kairos.test_hooks=1"\
	"$KAIROS_TEST_INITRAMFS_KAIROS"
run_guest vm.json
expect_rc 0
expect_value module "kairos ok"
expect_value run "/usr/bin/kairos-garbage-selftest exit=0"

expect_value garbage-ring 1
expect_value garbage-inject ok
expect_value garbage-bad-producer answered
# Ops are random in 0..7, of which 5 are not ops: ~1250 of 2000 are refused.
expect_between garbage-bad-op-reports 1 "$GARBAGE"
expect_between garbage-bad-index-reports 1 1000

expect_stat .outsourcing.errors.bad_op 1 "$GARBAGE"
expect_stat .outsourcing.errors.bad_request_indices 1
# What the garbage armed stays the guest's business, within its quota.
expect_stat .outsourcing.armed 0 "$GARBAGE"

# The same ring still serves timers.
expect_value timers-finished yes
expect_value timers-armed "$COUNT"
fired=$(guest_value timers-fired)
expect_value timers-expected "$fired"
expect_between timers-fired 1 $((2 * COUNT))
expect_demo_exact timers
expect_demo_no_add_errors timers
expect_value timers-armed-after-run 0
expect_value timers-rmmod ok
log "guest: stale=$(guest_value garbage-stale) del-races=$(guest_value garbage-del-races)" \
    "errors=$(guest_value garbage-errors)"
finish
