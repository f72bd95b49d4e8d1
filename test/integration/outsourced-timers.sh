#!/usr/bin/env bash
# Outsourced timers end to end (DESIGN.md section 5), 1 vCPU, kvm-clock off:
# kairos.ko registers its VMRPC ring, kairos-demo.ko arms 10000 timers at
# random deadlines within 2 s, cancels every 10th and re-arms every 7th.
# Every timer not cancelled fires exactly once, none before its deadline,
# none after it was cancelled; rmmod of the demo with 1000 timers still
# armed is clean; /dev/kairos maps the shared-info page read-only only and
# KAIROS_IOC_SLEEP_UNTIL sleeps until (not before) its deadline; the
# monitor's --stats show the requests and expiries. A second boot with a
# host quota of 1000 timers checks that refusals reach the guest.
# The guest side is /usr/bin/kairos-timers-selftest (from
# guest/selftest/) in the image KAIROS_TEST_INITRAMFS_KAIROS.
source "$(dirname "$0")/lib.sh"
require_kvm

require_kairos_image "kairos.ko and kairos-demo.ko"
require_jq

COUNT=10000
expect_timers() { expect_value "timers-$1" "$2"; }
timers_value() { guest_value "timers-$1"; }

write_config vm.json 1 256 \
	"$BASE_CMDLINE kairos.init=run:/usr/bin/kairos-timers-selftest kairos.args=$COUNT,2000 kairos.modules=1" \
	"$KAIROS_TEST_INITRAMFS_KAIROS" '"clock": {"kvmclock": false}'
run_guest vm.json
expect_rc 0
expect_value module "kairos ok"
expect_value run "/usr/bin/kairos-timers-selftest exit=0"

expect_demo_report timers "$COUNT"
expect_demo_no_add_errors timers
expect_timers armed-after-run 0
expect_timers rmmod ok

# Unloading with armed timers.
expect_timers leave-insmod ok
expect_timers armed-before-rmmod 1000
expect_timers leave-rmmod ok
expect_timers armed-after-rmmod 0
expect_timers errors 0
expect_timers kernel-warnings 0

# /dev/kairos: the shared-info page mapped read-only, and SLEEP_UNTIL.
expect_value dev-open ok
expect_value dev-mmap-ro ok
expect_value dev-abi-version 2
expect_value dev-clock-agrees yes
expect_value dev-mmap-rw refused
expect_value dev-mprotect-rw refused
expect_value dev-sleep 0
expect_value dev-sleep-early no
expect_value dev-sleep-past 0

# The monitor's side.
expect_stat .outsourcing.requests 1
expect_stat .outsourcing.expiries 1
requests=$(stat_value .outsourcing.requests)
log "host: requests=$requests doorbells=$(jq -r '.outsourcing.doorbells' stats.json)" \
    "polled_requests=$(jq -r '.outsourcing.polled_requests' stats.json)" \
    "lateness_ns=$(jq -c '.outsourcing.lateness_ns' stats.json)"
log "guest: requests=$(timers_value requests) expiries=$(timers_value expiries)" \
    "stale=$(timers_value stale) del-races=$(timers_value del-races)" \
    "ring-full-waits=$(timers_value ring-full-waits) max_late_us=$(timers_value max_late_us)" \
    "sleep-late-us=$(guest_value dev-sleep-late-us)"

# Quota: with outsourcing.max_timers=1000, 3000 timers within 2 s overflow
# it. Refused armings reach the callback with the error (the demo sets
# KAIROS_TIMER_REPORT_ERRORS); every other one fires once, on time.
log "quota: outsourcing.max_timers=1000, 3000 timers"
mv out.txt out-first.txt
write_config quota.json 1 256 \
	"$BASE_CMDLINE kairos.init=run:/usr/bin/kairos-timers-selftest kairos.args=3000,2000,5000 kairos.modules=1" \
	"$KAIROS_TEST_INITRAMFS_KAIROS" '"clock": {"kvmclock": false}, "outsourcing": {"max_timers": 1000}'
run_guest quota.json
expect_rc 0
expect_timers finished yes
expect_timers armed 3000
expect_between timers-refused 1 3000
expect_between timers-quota-refusals 1 100000
fired=$(timers_value fired)
refused=$(timers_value refused)
expected=$(timers_value expected)
if [ -n "$fired" ] && [ -n "$refused" ] && [ "$((fired + refused))" = "$expected" ]; then
	pass "quota: fired ($fired) + refused ($refused) == expected ($expected)"
else
	fail "quota: fired '$fired' + refused '$refused' != expected '$expected'"
fi
expect_demo_exact timers
expect_timers armed-after-run 0
expect_timers rmmod ok
expect_timers leave-rmmod ok
expect_timers armed-after-rmmod 0
expect_timers kernel-warnings 0
expect_stat .outsourcing.errors.quota 1
finish
