#!/bin/bash
# Inside with-kvm (run from /tmp/exp: scripts/with-kvm --timeout 1100 -- /tmp/exp/inner.sh):
# trace scheduler switches and wake-ups while a 1 ms outsourced sleeper runs,
# with the timer thread at normal priority and at fifo:50 (vm-normal.json,
# vm-fifo.json: the bench/timer-latency fifo variant's config, priority
# changed), two boots of each. /tmp/exp/analyze.py was count_preemptions.py
# of this folder.
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
mount -t debugfs nodev /sys/kernel/debug 2>/dev/null
cd /tmp/exp || exit 1
for cfg in normal fifo normal fifo; do
  perf record -q -e sched:sched_switch -e sched:sched_wakeup -a -o /tmp/exp/perf-$cfg.data -- \
    timeout 300 /work/main/build/vmm/kairos run /tmp/exp/vm-$cfg.json </dev/null > /tmp/exp/console-$cfg.txt 2>/tmp/exp/vmm-$cfg.txt
  perf script -i /tmp/exp/perf-$cfg.data -F comm,tid,cpu,time,event,trace > /tmp/exp/sched-$cfg.txt 2>/dev/null
  grep KAIROS-BENCH /tmp/exp/console-$cfg.txt | tr -d '\r' | sed "s/^/$cfg: /" >> /tmp/exp/results.txt
  python3 /tmp/exp/analyze.py /tmp/exp/sched-$cfg.txt "$cfg" >> /tmp/exp/results.txt
  rm -f /tmp/exp/perf-$cfg.data
done
