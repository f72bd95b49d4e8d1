#!/usr/bin/env bash
# The guest's wall clock (CMOS RTC at boot, then kairos.ko's shared-info wall
# clock at load) matches the host's within a second. The guest sends its
# CLOCK_REALTIME through the sample ports and kairos compares each with its
# own CLOCK_REALTIME on the same VM exit (--stats realtime_offset_ms).
source "$(dirname "$0")/lib.sh"
require_kvm
: "${KAIROS_MODULE_KO:?}" "${KAIROS_CLOCK_PROBE:?}"

clock_probe_initramfs wall.cpio
write_config vm.json 1 256 \
	"$BASE_CMDLINE kairos.init=run:/usr/bin/clock-probe kairos.args=--realtime,--seconds,3,--interval-ms,100,--tag,5" \
	"$WORK/wall.cpio" '"clock": {"kvmclock": false}'
run_guest vm.json
expect_rc 0
expect_value module "kairos ok"
offset=$(jq -r '.clock_drift["5"].realtime_offset_ms // empty' stats.json)
samples=$(jq -r '.clock_drift["5"].samples // 0' stats.json)
log "guest wall clock minus host wall clock: $offset ms ($samples samples)"
if [ -n "$offset" ] && awk -v o="$offset" 'BEGIN { exit !(o > -1000 && o < 1000) }'; then
	pass "guest wall clock within 1 s of the host's ($offset ms)"
else
	fail "guest wall clock offset '$offset' ms"
fi
finish
