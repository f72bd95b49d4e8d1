import re, sys
path, label = sys.argv[1], sys.argv[2]
cur = {}            # cpu -> comm running
switch_re = re.compile(r'\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:\s+prev_comm=(.*?) prev_pid=(\d+) prev_prio=(\d+) prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+) next_prio=(\d+)')
wake_re = re.compile(r'\[(\d+)\]\s+([\d.]+):\s+sched:sched_wakeup:\s+comm=(.*?) pid=(\d+) prio=(\d+)(?: success=\d+)? target_cpu=(\d+)')
preempt_by_timer = preempt_other = vcpu_switch_out = 0
timer_wakes = onto_vcpu_cpu = onto_vcpu_cpu_other_idle = 0
for line in open(path, errors='replace'):
    m = switch_re.search(line)
    if m:
        cpu = int(m.group(1)); prev = m.group(3); state = m.group(6); nxt = m.group(7)
        if prev.startswith('kairos-vcpu'):
            vcpu_switch_out += 1
            if state.startswith('R'):
                if nxt == 'kairos-timer': preempt_by_timer += 1
                else: preempt_other += 1
        cur[cpu] = nxt
        continue
    m = wake_re.search(line)
    if m and m.group(3) == 'kairos-timer':
        timer_wakes += 1
        t = int(m.group(6))
        if cur.get(t, '').startswith('kairos-vcpu'):
            onto_vcpu_cpu += 1
            if any(c != t and v.startswith('swapper') for c, v in cur.items()):
                onto_vcpu_cpu_other_idle += 1
print(f"{label}: timer-thread wake-ups {timer_wakes}, onto the running vCPU's CPU {onto_vcpu_cpu} "
      f"(another CPU idle then: {onto_vcpu_cpu_other_idle}); vCPU switched out {vcpu_switch_out}, "
      f"preempted by the timer thread {preempt_by_timer}, by others {preempt_other}")
