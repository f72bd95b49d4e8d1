#!/usr/bin/env bash
# The benchmarks' command lines (issue 11): --help prints the usage and
# runs nothing, a bad argument is one clear line and exit 2, never an
# abort or a run with garbage. Usage: bench-cli.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
source_dir=$1
build=$2
failures=0

expect() {  # expect DESCRIPTION WANTED_RC PATTERN COMMAND...
	local description=$1 wanted=$2 pattern=$3 rc
	shift 3
	output=$(timeout 20 "$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$wanted" ] && grep -qE -- "$pattern" <<<"$output"; then
		echo "ok: $description"
	else
		echo "FAIL: $description: exit $rc (wanted $wanted), output: $output" >&2
		failures=$((failures + 1))
	fi
}

throughput=$build/bench/vmrpc-throughput
expect "vmrpc-throughput --help prints the usage" 0 '^usage: vmrpc-throughput' "$throughput" --help
if timeout 20 "$throughput" --help | grep -q 'requests/s'; then
	echo "FAIL: vmrpc-throughput --help ran the benchmark" >&2
	failures=$((failures + 1))
fi
expect "vmrpc-throughput --requests abc is refused" 2 "--requests: must be a whole number 1..1000000000, got 'abc'" \
	"$throughput" --requests abc
expect "vmrpc-throughput --requests without a value" 2 '--requests needs a value' "$throughput" --requests
expect "vmrpc-throughput with an unknown argument" 2 "unknown argument '--frob'" "$throughput" --frob

boot_time=$source_dir/bench/boot-time
expect "boot-time --help is its comment, not its code" 0 '^bench/boot-time \[--runs N\]' "$boot_time" --help
if "$boot_time" --help | grep -qE '^(set |cd |#!)'; then
	echo "FAIL: boot-time --help prints a line of its source" >&2
	failures=$((failures + 1))
fi
expect "boot-time --runs abc is refused" 2 "--runs: must be a whole number from 1, got 'abc'" "$boot_time" --runs abc
expect "boot-time --json without a value" 2 '--json needs a value' "$boot_time" --json

# A failed boot is counted with its reason: how the VMM ended and its
# last line (here a stand-in VMM that reports a triple fault).
runner=$build/bench/boot-time-runner
runner_json=$(mktemp)
expect "boot-time-runner says why a run failed" 0 \
	'FAILED \(exit 4: kairos: guest triple fault: vCPU 0\)' "$runner" --runs 1 --json "$runner_json" \
	'ok=echo KAIROS-GUEST init' 'fault=echo KAIROS-GUEST init; echo "kairos: guest triple fault: vCPU 0" >&2; exit 4'
if [ "$(jq -c '[.candidates[] | .failure_reasons]' "$runner_json" 2>&1)" = \
	'[[],["exit 4: kairos: guest triple fault: vCPU 0"]]' ]; then
	echo "ok: boot-time-runner's JSON keeps the reasons"
else
	echo "FAIL: boot-time-runner's JSON: $(jq -c '.candidates' "$runner_json" 2>&1)" >&2
	failures=$((failures + 1))
fi
rm -f "$runner_json"

reliability=$source_dir/bench/boot-reliability
expect "boot-reliability --help is its comment" 0 '^bench/boot-reliability \[--sizes' "$reliability" --help
expect "boot-reliability --sizes with a non-number is refused" 2 "--sizes: must be a whole number from 1, got 'x'" \
	"$reliability" --sizes "8 x"
expect "boot-reliability --runs 0 is refused" 2 "--runs: must be a whole number from 1, got '0'" "$reliability" --runs 0
expect "boot-reliability: an unknown argument is refused" 2 "unknown argument '--bogus'" "$reliability" --bogus
io=$source_dir/bench/io
expect "io --help is its comment" 0 '^bench/io \[--runs N\]' "$io" --help
if "$io" --help | grep -qE '^(set |cd |#!)'; then
	echo "FAIL: io --help prints a line of its source" >&2
	failures=$((failures + 1))
fi
expect "io --runs abc is refused" 2 "--runs: must be a whole number from 1, got 'abc'" "$io" --runs abc
expect "io --only with an unknown test is refused" 2 "--only: must be fio, net or all, got 'disk'" "$io" --only disk
expect "io --json without a value" 2 '--json needs a value' "$io" --json
expect "timer-latency --help prints the usage" 0 'timer-latency' "$source_dir/bench/timer-latency" --help
exit "$failures"
