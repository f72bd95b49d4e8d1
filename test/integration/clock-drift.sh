#!/usr/bin/env bash
# Clock drift under host CPU load, per guest clocksource (kairos, tsc,
# kvm-clock), against an independent ruler: the guest's clock-probe writes
# CLOCK_MONOTONIC readings to the Kairos sample ports and kairos stamps each
# with the host's CLOCK_MONOTONIC on the same VM exit (--stats clock_drift).
# Reports the drift; asserts only that every measurement happened.
source "$(dirname "$0")/lib.sh"
require_kvm
: "${KAIROS_MODULE_KO:?}" "${KAIROS_CLOCK_PROBE:?}"
SECONDS_PER_CLOCK=${KAIROS_DRIFT_SECONDS:-30}

cat >drift-run <<'SCRIPT'
#!/bin/sh
# In the guest: probe each clocksource in turn, one sample tag each.
dir=/sys/devices/system/clocksource/clocksource0
tag=1
for cs in kairos tsc kvm-clock; do
	if grep -qw "$cs" $dir/available_clocksource; then
		echo "$cs" >$dir/current_clocksource
		echo "KAIROS-GUEST drift-tag$tag=$(cat $dir/current_clocksource)"
		clock-probe --seconds "$1" --interval-ms 200 --tag $tag
	else
		echo "KAIROS-GUEST drift-tag$tag=unavailable:$cs"
	fi
	tag=$((tag + 1))
done
SCRIPT
chmod +x drift-run
clock_probe_initramfs drift.cpio --extra drift-run:/usr/bin/drift-run
write_config vm.json 1 256 "$BASE_CMDLINE kairos.init=run:/usr/bin/drift-run kairos.args=$SECONDS_PER_CLOCK" "$WORK/drift.cpio"

# Inside the KVM machine: two CPU hogs (one per host CPU) for the whole run.
cat >loaded.sh <<SCRIPT
#!/bin/sh
for i in 1 2; do sh -c 'while :; do :; done' & done
"$KAIROS_BIN" run vm.json --stats stats.json </dev/null >guest.txt 2>kairos.txt
status=\$?
kill \$(jobs -p) 2>/dev/null
echo "kairos-exit=\$status"
# kairos's messages and exit code as ours: a guest that triple-faulted in
# early boot (the emulated machine's known flake) is then run once more,
# as run_guest's are.
cat kairos.txt >&2
exit \$status
SCRIPT
chmod +x loaded.sh
log "probing each clocksource for ${SECONDS_PER_CLOCK}s under 2 CPU hogs"
KAIROS_TEST_RETRY_TRIPLE_FAULT=1 run_in_kvm ./loaded.sh
mv out.txt host.txt
cp guest.txt out.txt
if grep -q "kairos-exit=0" host.txt; then pass "guest ran and powered off"; else fail "$(cat host.txt kairos.txt)"; fi
expect_confined vm.json

expected_samples=$((SECONDS_PER_CLOCK * 1000 / 200))
printf '%-12s %8s %12s %14s %16s %18s\n' clocksource samples "drift ppm" "envelope ppm" "end-to-end us" "max deviation us" | tee drift-table.txt
for tag in 1 2 3; do
	name=$(guest_value "drift-tag$tag")
	case "$name" in unavailable:*) log "$name"; continue ;; esac
	samples=$(jq -r ".clock_drift[\"$tag\"].samples // 0" stats.json)
	if [ "$samples" -ge $((expected_samples * 9 / 10)) ]; then
		pass "$name: $samples samples"
	else
		fail "$name: $samples samples, expected about $expected_samples"
	fi
	jq -r --arg n "$name" ".clock_drift[\"$tag\"] | [\$n, .samples, (.drift_ppm*1000|round/1000), (.envelope_drift_ppm*1000|round/1000), (.end_to_end_us|round), (.max_deviation_us|round)] | @tsv" \
		stats.json | awk -F'\t' '{printf "%-12s %8s %12s %14s %16s %18s\n", $1, $2, $3, $4, $5, $6}' | tee -a drift-table.txt
done
if [ "$(guest_value drift-tag1)" = kairos ]; then pass "the kairos clocksource was selectable"; else fail "kairos clocksource: $(guest_value drift-tag1)"; fi
cp stats.json "${KAIROS_DRIFT_JSON:-/dev/null}" 2>/dev/null || true
finish
