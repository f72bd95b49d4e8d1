#!/usr/bin/env bash
# Transparent outsourcing of unmodified timer_list users (DESIGN.md
# section 5), 1 vCPU, kvm-clock off. kairos-plain-demo.ko knows nothing of
# Kairos: it arms 1000 timer_lists with add_timer()/mod_timer() at random
# expiries within 2 s, cancels every 10th with del_timer_sync() and re-arms
# every 7th with mod_timer(), checking timer_pending() throughout.
#  - Boot 1, kairos.outsource=plain_demo_timer_fn: kairos.ko redirects those
#    calls (ftrace) to outsourced timers. Every timer not cancelled fires
#    exactly once, never before its expiry, never after a successful cancel,
#    and the monitor's --stats count the requests and expiries.
#  - Boot 2, no outsource=: the same demo runs on the guest's own timers;
#    kairos.ko posts no request for it.
#  - Boot 3, outsource= again, with kvm-clock on so that kairos is not the
#    current clocksource and can unload without a periodic-tick fallback
#    (with kvm-clock off that boot needed highres=off nohz=off and now and
#    then stalled before /init): rmmod kairos 300 ms after the demo armed its
#    timers (3 s spread). The still-armed ones go back to the kernel's timer
#    wheel and every timer still fires exactly once, none early.
# The guest side is /usr/bin/kairos-plain-selftest (from
# guest/selftest/) in the image KAIROS_TEST_INITRAMFS_KAIROS.
source "$(dirname "$0")/lib.sh"
require_kvm

require_kairos_image "kairos.ko and kairos-plain-demo.ko"
require_jq

COUNT=1000
expect_plain() { expect_value "plain-$1" "$2"; }
plain_value() { guest_value "plain-$1"; }

# The demo's own verdicts, the same in both boots.
expect_demo_passed() {
	expect_demo_report plain "$COUNT"
	expect_plain pending_wrong 0
	[ "${1:-}" = unloaded ] || expect_plain armed-after-run 0
	expect_plain rmmod ok
	expect_plain kernel-warnings 0
}

log "boot 1: kairos.outsource=plain_demo_timer_fn"
write_config outsourced.json 1 256 \
	"$BASE_CMDLINE kairos.init=run:/usr/bin/kairos-plain-selftest kairos.args=$COUNT,2000 kairos.modules=1 kairos.outsource=plain_demo_timer_fn" \
	"$KAIROS_TEST_INITRAMFS_KAIROS" '"clock": {"kvmclock": false}'
run_guest outsourced.json
expect_rc 0
expect_value module "kairos ok"
expect_value run "/usr/bin/kairos-plain-selftest exit=0"
expect_output "kairos: outsourcing timers of plain_demo_timer_fn"
expect_plain outsource plain_demo_timer_fn
expect_demo_passed
expect_plain outsource-active 1
fired=$(plain_value fired)
# Every arming of the demo was outsourced and every callback ran from an
# outsourced expiry: none fell back to the guest's own timers.
expect_between plain-outsource-armings "$COUNT" $((3 * COUNT))
expect_plain outsource-fires "$fired"
expect_plain outsource-fallbacks 0
expect_plain outsource-deletes "$(plain_value cancelled)"
# An expiry while jiffies still lagged re-arms for the remaining ticks.
early_rearms=$(plain_value outsource-early_rearms)
expect_between plain-expiries-delta "$fired" $((fired + ${early_rearms:-0}))
expect_between plain-requests-delta "$COUNT" $((4 * COUNT))
requests=$(stat_value .outsourcing.requests)
expiries=$(stat_value .outsourcing.expiries)
expect_stat .outsourcing.requests "$COUNT"
expect_stat .outsourcing.expiries "${fired:-1}"
log "boot 1: max_late_ms=$(plain_value max_late_ms) early_rearms=$early_rearms requests=$requests expiries=$expiries" \
    "guest requests-delta=$(plain_value requests-delta) expiries-delta=$(plain_value expiries-delta)"

log "boot 2: no outsource="
mv out.txt out-outsourced.txt
mv stats.json stats-outsourced.json
write_config native.json 1 256 \
	"$BASE_CMDLINE kairos.init=run:/usr/bin/kairos-plain-selftest kairos.args=$COUNT,2000 kairos.modules=1" \
	"$KAIROS_TEST_INITRAMFS_KAIROS" '"clock": {"kvmclock": false}'
run_guest native.json
expect_rc 0
expect_value module "kairos ok"
expect_value run "/usr/bin/kairos-plain-selftest exit=0"
expect_plain outsource "(null)"
expect_demo_passed
expect_plain outsource-active 0
expect_plain outsource-armings 0
expect_plain requests-delta 0
expect_plain expiries-delta 0
# The demo's timers stayed in the guest.
expect_stat .outsourcing.requests 0 $((COUNT - 1))
log "boot 2: max_late_ms=$(plain_value max_late_ms)"

log "boot 3: outsource=, then rmmod kairos with timers armed"
mv out.txt out-native.txt
mv stats.json stats-native.json
write_config unload.json 1 256 \
	"$BASE_CMDLINE kairos.init=run:/usr/bin/kairos-plain-selftest kairos.args=$COUNT,3000,unload kairos.modules=1 kairos.outsource=plain_demo_timer_fn" \
	"$KAIROS_TEST_INITRAMFS_KAIROS" '"clock": {"kvmclock": true}'
run_guest unload.json
expect_rc 0
expect_value run "/usr/bin/kairos-plain-selftest exit=0"
expect_plain before-unload-active 1
expect_plain unload-kairos ok
expect_between plain-restored 1 "$COUNT"
expect_demo_passed unloaded
log "boot 3: restored=$(plain_value restored) fired before unload=$(plain_value before-unload-fires)"
finish
