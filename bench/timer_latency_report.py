#!/usr/bin/env python3
"""The report of bench/timer-latency: statistics, ratios, JSON and tables.

bench/timer-latency boots the VMs and runs the loads; what they leave in its
work folder is read here:
  results.tsv   one row per run: LOAD MODE INTERVAL RUN SAMPLES P50 P99 P99.9
                MAX MISSED VARIANT MEAN STEAL (us; empty when not reported)
  drift.tsv     LOAD CLOCKSOURCE SAMPLES ENVELOPE_DRIFT PLAIN_DRIFT DEVIATION
  loops.tsv     LOAD PHASE LOOPS ITERATIONS_PER_S CPU_SHARE SECONDS
  env.tsv       KEY VALUE (kernel, cpu, cpus, hypervisor_flag, with_kvm, fifo,
                qemu)
  drift-LOAD-CLOCKSOURCE.dat   "SECONDS OFFSET_US" per line
  boot-LOAD-VARIANT.json, stats-LOAD-VARIANT.json   each boot and its --stats
  guest-retries.txt   one line per guest booted again after a triple fault
Writes the JSON report (the schema bench/results/timer-latency.json and the
README's Results section read) and prints the tables on stdout.

Numbers follow jq's arithmetic and printing (the report was jq before): every
number is a double, round() rounds half away from zero, and a number prints
as jq 1.6 prints it, so the JSON reads the same whichever wrote it.
"""

import argparse
import json
import math
import re
import sys
from decimal import Decimal
from pathlib import Path

# Display order of the modes (tables, cells) and of the variants (price).
MODE_ORDER = ["host", "host-fifo", "emulated", "emulated+reserve", "emulated+rtvcpu",
              "outsourced", "outsourced+fifo", "outsourced+window", "outsourced+rtvcpu",
              "kernel-hrtimer", "kernel-outsourced", "kernel-outsourced+window", "qemu-kvm",
              "roundtrip", "kernel-roundtrip"]
VARIANT_ORDER = ["kairos", "fifo", "window", "rtvcpu", "reserve"]
WHAT_IS_RAISED = {
    "kairos": "nothing",
    "fifo": "the timer thread (fifo:50)",
    "window": "the vCPUs inside windows (SCHED_DEADLINE) and the timer thread (fifo:50)",
    "rtvcpu": "the whole VMM (chrt -f 40)",
    "reserve": "the vCPU threads (SCHED_DEADLINE reservation)",
}


# ------------------------------------------------------------ jq semantics


def jq_round(x):
    """C round() as jq uses it: halves away from zero (Python rounds to even)."""
    whole = math.floor(abs(x))
    if abs(x) - whole >= 0.5:
        whole += 1
    return math.copysign(float(whole), x)


def alt(value, fallback):
    """jq's `value // fallback`: null and false give way."""
    return fallback if value is None or value is False else value


def get(obj, *keys):
    """jq's `.a.b`: null when any step is missing or null."""
    for key in keys:
        if obj is None:
            return None
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def sort_key(value):
    """jq's total order: null < false < true < numbers < strings < arrays < objects."""
    if value is None:
        return (0,)
    if value is False:
        return (1,)
    if value is True:
        return (2,)
    if isinstance(value, (int, float)):
        return (3, value)
    if isinstance(value, str):
        return (4, value)
    if isinstance(value, list):
        return (5, [sort_key(v) for v in value])
    return (6, sorted((k, sort_key(v)) for k, v in value.items()))


def group_by(rows, key):
    """jq's group_by: groups in the order of their sorted keys."""
    groups = {}
    for row in sorted(rows, key=lambda r: sort_key(key(r))):
        groups.setdefault(json.dumps(key(row)), []).append(row)
    return list(groups.values())


def median(values):
    """The lower median, nulls sorted first (as the jq report took it)."""
    if not values:
        return None
    values = sorted(values, key=sort_key)
    return values[(len(values) - 1) // 2]


def jq_min(values):
    return min(values, key=sort_key) if values else None


def jq_max(values):
    return max(values, key=sort_key) if values else None


def add(values):
    """jq's add over numbers: null for none, nulls count as nothing."""
    total = None
    for value in values:
        if value is None:
            continue
        total = value if total is None else total + value
    return total


def number(text):
    """A TSV field as a number; empty or absent is null."""
    if text is None or text == "":
        return None
    return float(text)


def format_number(value):
    """A number as jq 1.6 prints it (its dtoa: shortest digits, an exponent
    only below 1e-4 or past 15 digits of zeros)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) < 10**17:
        return str(value)
    value = float(value)
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digits_tuple.digits))
    decpt = len(digits) + digits_tuple.exponent  # value = 0.DIGITS x 10^decpt
    if decpt <= -4 or decpt > len(digits) + 15:
        exponent = decpt - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if decpt <= 0:
        return f"{sign}0.{'0' * -decpt}{digits}"
    if decpt >= len(digits):
        return f"{sign}{digits}{'0' * (decpt - len(digits))}"
    return f"{sign}{digits[:decpt]}.{digits[decpt:]}"


def dumps(value, indent=0):
    """JSON as `jq .` writes it: two-space indent, jq's numbers."""
    pad = "  " * (indent + 1)
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return format_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [pad + dumps(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    if not value:
        return "{}"
    items = [pad + json.dumps(k, ensure_ascii=False) + ": " + dumps(v, indent + 1)
             for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"


def text(value, null="null"):
    """A value in a line of text, as jq's string interpolation shows it."""
    if value is None:
        return null
    if isinstance(value, str):
        return value
    return format_number(value)


# ------------------------------------------------------------ figures


def ratio(a, b):
    """a / b to three decimals; null unless both exist and b > 0."""
    if a is None or b is None or not b > 0:
        return None
    return jq_round(a / b * 1000) / 1000


def minus(a, b):
    return None if a is None or b is None else a - b


def plus(a, b):
    return None if a is None or b is None else a + b


def us(ns):
    """Nanoseconds in microseconds to one decimal."""
    return None if ns is None else jq_round(ns / 1000 * 10) / 10


def tenth(x):
    return None if x is None else jq_round(x * 10) / 10


def sum_field(items, field):
    """The sum of FIELD over items; null when any lacks it or there are none."""
    if not items or any(get(item, field) is None for item in items):
        return None
    return add(item[field] for item in items)


def words(s):
    return [w for w in s.split(" ") if w]


def read_tsv(path):
    """Rows of a TSV file (missing file: none)."""
    try:
        content = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [line.split("\t") for line in content.split("\n") if line]


def field(row, i):
    return row[i] if i < len(row) else None


def cells_from(rows):
    """The runs of one (load, mode, interval) together: p50, p99 and p99.9 are
    the median over the runs, p99 with its min and max; max and missed over
    all runs."""
    runs = [{"load": field(r, 0), "mode": field(r, 1), "interval_us": number(field(r, 2)),
             "run": number(field(r, 3)), "samples": number(field(r, 4)),
             "p50_us": number(field(r, 5)), "p99_us": number(field(r, 6)),
             "p999_us": number(field(r, 7)), "max_us": number(field(r, 8)),
             "missed": number(field(r, 9))} for r in rows]
    cells = []
    for group in group_by(runs, lambda r: [r["load"], r["mode"], r["interval_us"]]):
        first = group[0]
        try:
            load_per_cpu = float(first["load"])
        except (TypeError, ValueError):
            load_per_cpu = None  # io
        p99s = [r["p99_us"] for r in group]
        cells.append({
            "load": first["load"], "load_per_cpu": load_per_cpu, "mode": first["mode"],
            "interval_us": first["interval_us"], "runs": len(group),
            "samples": add(alt(r["samples"], 0) for r in group),
            "p50_us": median([r["p50_us"] for r in group]), "p99_us": median(p99s),
            "p99_min_us": jq_min(p99s), "p99_max_us": jq_max(p99s),
            "p999_us": median([r["p999_us"] for r in group]),
            "max_us": jq_max([r["max_us"] for r in group]),
            "missed": add(alt(r["missed"], 0) for r in group),
            "per_run": [{k: v for k, v in r.items() if k not in ("load", "mode", "interval_us")}
                        for r in group],
        })
    return cells


def guest_side_from(rows):
    """Per cell, from the guest: the mean lateness and the vCPU's steal time
    (its run-queue wait) per wake-up, over the runs that reported them."""
    runs = [{"load": field(r, 0), "mode": field(r, 1), "interval_us": number(field(r, 2)),
             "samples": number(field(r, 4)), "mean_us": number(field(r, 11)),
             "steal_us": number(field(r, 12))} for r in rows]
    out = []
    for group in group_by(runs, lambda r: [r["load"], r["mode"], r["interval_us"]]):
        with_mean = [r for r in group if r["mean_us"] is not None and alt(r["samples"], 0) > 0]
        with_steal = [r for r in group if r["steal_us"] is not None and alt(r["samples"], 0) > 0]
        mean = steal = None
        if with_mean:
            mean = tenth(add(r["mean_us"] * r["samples"] for r in with_mean) /
                         add(r["samples"] for r in with_mean))
        if with_steal:
            steal = tenth(add(r["steal_us"] for r in with_steal) /
                          add(r["samples"] for r in with_steal))
        out.append({"load": group[0]["load"], "mode": group[0]["mode"],
                    "interval_us": group[0]["interval_us"], "mean_us": mean,
                    "steal_per_wakeup_us": steal})
    return out


def vcpu_end(boot, stats_field, snapshot_field):
    """SNAPSHOT_FIELD of the vCPU threads at the end of a boot: the --stats
    vcpus[].STATS_FIELD sum when there is one and it is not below the figure
    at the ready line, else the last polled snapshot."""
    total = sum_field(get(boot, "stats", "vcpus"), stats_field)
    at_ready = get(boot, "at_ready", snapshot_field)
    if total is not None and total > 0 and (at_ready is None or total >= at_ready):
        return total
    return get(boot, "last_polled", snapshot_field)


def vcpu_end_source(boot):
    total = sum_field(get(boot, "stats", "vcpus"), "cpu_ns")
    at_ready = get(boot, "at_ready", "vcpu_cpu_ns")
    if total is not None and total > 0 and (at_ready is None or total >= at_ready):
        return "--stats"
    if get(boot, "last_polled") is not None:
        return "polled /proc/PID/task/*/schedstat (last second)"
    return None


def raised(boot):
    """CPU time a boot ran at raised priority: [measured part, whole run], ns."""
    stats = alt(boot.get("stats"), {})
    ready = alt(boot.get("at_ready"), {})
    outsourcing = alt(stats.get("outsourcing"), {})
    variant = boot.get("variant")
    timer = outsourcing.get("timer_thread_cpu_ns")
    window_cpu = get(outsourcing, "window", "cpu_ns")
    if variant == "kairos":
        return [0, 0]
    if variant == "fifo":
        return [minus(timer, ready.get("timer_thread_cpu_ns")), timer]
    if variant == "window":
        return [plus(window_cpu, minus(timer, ready.get("timer_thread_cpu_ns"))),
                plus(window_cpu, timer)]
    if variant == "rtvcpu":
        return [minus(stats.get("process_cpu_ns"), ready.get("process_cpu_ns")),
                stats.get("process_cpu_ns")]
    if variant == "reserve":
        # Reserved from the ready line only: the whole run is the measured part.
        vcpu = minus(vcpu_end(boot, "cpu_ns", "vcpu_cpu_ns"), ready.get("vcpu_cpu_ns"))
        return [vcpu, vcpu]
    return [None, None]


def price_of(boot, loops):
    """What a boot cost the host over its measured part (ready line to exit)."""
    raised_ns = raised(boot)
    stats = alt(boot.get("stats"), {})
    ready = alt(boot.get("at_ready"), {})
    during = next((l for l in loops
                   if l["load"] == boot.get("load") and l["phase"] == boot.get("variant")), None)
    anchors = [l for l in loops
               if l["load"] == boot.get("load") and l["phase"].startswith("anchor")]
    anchor = None
    if anchors:
        def mean(key):
            total = add(l[key] for l in anchors)
            return None if total is None else total / len(anchors)
        anchor = {"iterations_per_s": mean("iterations_per_s"), "cpu_share": mean("cpu_share")}
    measured_s = boot.get("measured_s")
    runtime_ms = stats.get("runtime_ms")
    wakeups = boot.get("timer_wakeups")
    vcpu_cpu = minus(vcpu_end(boot, "cpu_ns", "vcpu_cpu_ns"), ready.get("vcpu_cpu_ns"))
    return {
        "load": boot.get("load"), "variant": boot.get("variant"),
        "raised": WHAT_IS_RAISED.get(boot.get("variant")),
        "measured_s": measured_s,
        "runtime_s": None if runtime_ms is None else runtime_ms / 1000,
        "raised_cpu_ns": raised_ns[0],
        "raised_cpu_ms_per_s": (None if raised_ns[0] is None or not alt(measured_s, 0) > 0
                                else jq_round(raised_ns[0] / 1e6 / measured_s * 1000) / 1000),
        "raised_cpu_ns_whole_run": raised_ns[1],
        "raised_cpu_ms_per_s_whole_run": (None if raised_ns[1] is None or not alt(runtime_ms, 0) > 0
                                          else jq_round(raised_ns[1] / 1e3 / runtime_ms * 1000) / 1000),
        # Per wake-up, not per second: a boot whose sleeps wake later runs
        # longer for the same work, which would flatter its rate.
        "raised_cpu_per_wakeup_us": (None if raised_ns[0] is None or alt(wakeups, 0) == 0
                                     else us(raised_ns[0] / wakeups)),
        "vmm_cpu_ns": minus(stats.get("process_cpu_ns"), ready.get("process_cpu_ns")),
        "vcpu_cpu_ns": vcpu_cpu,
        "vcpu_run_delay_ns": minus(vcpu_end(boot, "run_delay_ns", "vcpu_run_delay_ns"),
                                   ready.get("vcpu_run_delay_ns")),
        "vcpu_figures_from": vcpu_end_source(boot),
        "vcpu_cpu_per_wakeup_us": (None if vcpu_cpu is None or alt(wakeups, 0) == 0
                                   else us(vcpu_cpu / wakeups)),
        "vcpu_preemptions_whole_run": sum_field(stats.get("vcpus"), "preemptions"),
        "timer_wakeups": wakeups,
        "timer_thread_cpu_ns": minus(get(stats, "outsourcing", "timer_thread_cpu_ns"),
                                     ready.get("timer_thread_cpu_ns")),
        "loops_iterations_per_s": get(during, "iterations_per_s"),
        "anchor_loops_iterations_per_s": get(anchor, "iterations_per_s"),
        "throughput_fraction": ratio(get(during, "iterations_per_s"),
                                     get(anchor, "iterations_per_s")),
        "loops_cpu_share_fraction": ratio(get(during, "cpu_share"), get(anchor, "cpu_share")),
        "loops_cpu_share": get(during, "cpu_share"),
        "anchor_loops_cpu_share": get(anchor, "cpu_share"),
        "window": get(stats, "outsourcing", "window"),
        "advance_ns": alt(get(stats, "outsourcing", "window", "advance_ns"),
                          get(stats, "outsourcing", "advance_ns")),
        "reserve": boot.get("reserve"), "launch": boot.get("launch"),
        "rc": boot.get("rc"), "attempts": boot.get("attempts"),
    }


def decomposition_of(cell, variant, boot, guest):
    """Where a Kairos cell's time went: the host timer thread's lateness, the
    vCPU's run delay per wake-up and the rest, the guest's own."""
    lateness = get(boot, "stats", "outsourcing", "lateness_ns")
    # Modes on the guest's own timer: KVM's hrtimer is not visible.
    own = re.search("^emulated|hrtimer", cell["mode"]) is not None
    boot_delay = None
    if boot is not None and alt(boot.get("timer_wakeups"), 0) != 0:
        delay_ns = minus(vcpu_end(boot, "run_delay_ns", "vcpu_run_delay_ns"),
                         get(boot, "at_ready", "vcpu_run_delay_ns"))
        if delay_ns is not None:
            boot_delay = delay_ns / boot["timer_wakeups"] / 1000
    steal = get(guest, "steal_per_wakeup_us")
    delay = alt(steal, boot_delay)
    guest_figure = alt(get(guest, "mean_us"), cell["p50_us"])
    if steal is not None:
        delay_from = "this cell: the guest CPU 0 steal time over its runs / its wake-ups"
    elif boot_delay is not None:
        delay_from = f"the {text(variant)} boot: vCPU schedstat run_delay / its timer wake-ups"
    else:
        delay_from = None
    if delay is None or guest_figure is None or (not own and get(lateness, "p50") is None):
        rest = None
    else:
        rest = tenth(guest_figure - (0 if own else lateness["p50"] / 1000) - delay)
    return {
        "load": cell["load"], "mode": cell["mode"], "variant": variant,
        "interval_us": cell["interval_us"], "guest_p50_us": cell["p50_us"],
        "guest_mean_us": get(guest, "mean_us"), "guest_p99_us": cell["p99_us"],
        "host_timer_lateness_p50_us": None if own else us(get(lateness, "p50")),
        "host_timer_lateness_p99_us": None if own else us(get(lateness, "p99")),
        "host_timer_samples": None if own else get(lateness, "samples"),
        "host_timer_scope": f"the {text(variant)} boot, pooled over its modes",
        "vcpu_run_delay_per_wakeup_us": tenth(delay),
        "vcpu_run_delay_from": delay_from,
        "vcpu_run_delay_per_wakeup_us_boot": tenth(boot_delay),
        "boot_timer_wakeups": get(boot, "timer_wakeups"),
        "guest_rest_us": rest,
        "guest_rest_of": "guest mean" if get(guest, "mean_us") is not None else "guest p50",
    }


def order_of(items, value):
    return items.index(value) if value in items else None


# ------------------------------------------------------------ inputs


def read_json(path):
    """A JSON file, or null when it is missing, empty or cut short."""
    try:
        content = Path(path).read_text()
    except FileNotFoundError:
        return None
    if not content.strip():
        return None
    try:
        return json.loads(content)
    except json.JSONDecodeError as error:
        print(f"timer-latency: {path} is not JSON ({error}); taken as missing", file=sys.stderr)
        return None


def read_boots(work):
    """Each Kairos boot with the --stats figures the price and decomposition use."""
    boots = []
    for path in sorted(work.glob("boot-*.json")):
        boot = read_json(path)
        if boot is None:
            continue
        stats = read_json(work / ("stats-" + path.name[len("boot-"):]))
        if stats is not None:
            outsourcing = stats.get("outsourcing")
            if outsourcing is not None:
                outsourcing = {k: outsourcing.get(k) for k in (
                    "priority", "lateness_ns", "ack_lateness_ns", "timer_thread_cpu_ns",
                    "advance_ns", "window")}
            stats = {"runtime_ms": stats.get("runtime_ms"),
                     "process_cpu_ns": stats.get("process_cpu_ns"),
                     "vcpus": stats.get("vcpus"), "outsourcing": outsourcing}
        boot["stats"] = stats
        if boot.get("variant") != "qemu":
            boots.append(boot)
    return boots


def read_series(work):
    """The drift series per (load, clocksource), centred on their median."""
    series = []
    for path in sorted(work.glob("drift-*.dat")):
        if path.stat().st_size == 0:
            continue
        name = path.name[len("drift-"):-len(".dat")]
        level, _, clocksource = name.partition("-")
        points = [[float(v) for v in line.split(" ")]
                  for line in path.read_text().split("\n") if line]
        series.append({"load": level, "clocksource": clocksource, "series": points})
    return series


def read_loops(work):
    """The busy loops' throughput per (load, phase): the last of a phase
    counts (a boot run again replaces the first)."""
    loops = [{"load": field(r, 0), "phase": field(r, 1), "loops": number(field(r, 2)),
              "iterations_per_s": number(field(r, 3)), "cpu_share": number(field(r, 4)),
              "seconds": number(field(r, 5))} for r in read_tsv(work / "loops.tsv")]
    return [group[-1] for group in group_by(loops, lambda l: [l["load"], l["phase"]])]


# ------------------------------------------------------------ the report


def build_report(work, config):
    """The JSON report from the work folder and the run's configuration
    (the command line of this tool, see main)."""
    work = Path(work)
    rows = read_tsv(work / "results.tsv")
    cells = cells_from(rows)
    guest_side = guest_side_from(rows)
    variant_of = {}
    for row in rows:
        variant_of[field(row, 1)] = field(row, 10)
    drift = [{"load": field(r, 0), "clocksource": field(r, 1), "samples": number(field(r, 2)),
              "drift_us_per_s": number(field(r, 3)),
              "drift_plain_fit_us_per_s": number(field(r, 4)),
              "max_deviation_us": number(field(r, 5))} for r in read_tsv(work / "drift.tsv")]
    env = {}
    for row in read_tsv(work / "env.tsv"):
        env[field(row, 0)] = field(row, 1)
    loops = read_loops(work)
    boots = read_boots(work)
    guest_retries = 0
    retries_file = work / "guest-retries.txt"
    if retries_file.exists():
        guest_retries = sum(1 for line in retries_file.read_text().split("\n") if line)

    def cell(load, mode, interval):
        return next((c for c in cells if c["load"] == load and c["mode"] == mode and
                     c["interval_us"] == interval), None)

    def p99(load, mode, interval):
        return get(cell(load, mode, interval), "p99_us")

    price = [price_of(b, loops) for b in boots if b.get("skipped") is None]

    def price_of_variant(load, variant, key="raised_cpu_ms_per_s"):
        return get(next((p for p in price if p["load"] == load and p["variant"] == variant),
                        None), key)

    decomposition = []
    for c in sorted(cells, key=lambda c: sort_key([c["load"], c["interval_us"],
                                                   order_of(MODE_ORDER, c["mode"])])):
        variant = variant_of.get(c["mode"])
        if variant is None or variant in ("host", "qemu"):
            continue
        boot = next((b for b in boots if b.get("load") == c["load"] and
                     b.get("variant") == variant), None)
        guest = next((g for g in guest_side if g["load"] == c["load"] and
                      g["mode"] == c["mode"] and g["interval_us"] == c["interval_us"]), None)
        decomposition.append(decomposition_of(c, variant, boot, guest))

    ratios_window = []
    for c in cells:
        if c["mode"] != "outsourced+window":
            continue
        load, interval = c["load"], c["interval_us"]
        ratios_window.append({
            "load": load, "interval_us": interval,
            "p99_outsourced_window_vs_emulated": ratio(c["p99_us"], p99(load, "emulated", interval)),
            "p99_outsourced_window_vs_host_fifo": ratio(c["p99_us"], p99(load, "host-fifo", interval)),
            "p50_outsourced_window_vs_emulated":
                ratio(c["p50_us"], get(cell(load, "emulated", interval), "p50_us")),
            "raised_cpu_window_vs_rtvcpu":
                ratio(price_of_variant(load, "window"), price_of_variant(load, "rtvcpu")),
            "raised_cpu_per_wakeup_window_vs_rtvcpu":
                ratio(price_of_variant(load, "window", "raised_cpu_per_wakeup_us"),
                      price_of_variant(load, "rtvcpu", "raised_cpu_per_wakeup_us")),
            "p99_outsourced_window_vs_outsourced":
                ratio(c["p99_us"], p99(load, "outsourced", interval)),
            "p99_outsourced_window_vs_outsourced_fifo":
                ratio(c["p99_us"], p99(load, "outsourced+fifo", interval)),
            "p99_outsourced_window_vs_outsourced_rtvcpu":
                ratio(c["p99_us"], p99(load, "outsourced+rtvcpu", interval)),
            "p99_outsourced_window_vs_emulated_reserve":
                ratio(c["p99_us"], p99(load, "emulated+reserve", interval)),
            "p99_kernel_outsourced_window_vs_kernel_hrtimer":
                ratio(p99(load, "kernel-outsourced+window", interval),
                      p99(load, "kernel-hrtimer", interval)),
        })

    window_support = config["window_support"] == 1
    qemu = env.get("qemu") == "1"
    throughput_anchors = []
    for l in loops:
        if not l["phase"].startswith("anchor"):
            continue
        anchor = {k: v for k, v in l.items() if k != "phase"}
        anchor["when"] = ("before the boots, with the host cells" if l["phase"] == "anchor"
                          else "after the boots, alone")
        throughput_anchors.append(anchor)
    return {
        "benchmark": "timer-latency",
        "environment": {
            "host_kernel": env.get("kernel"), "cpu_model": env.get("cpu"),
            "cpus": number(env.get("cpus")), "kvm": config["kvm"],
            "kvm_host_is_a_vm": alt(number(env.get("hypervisor_flag")), 0) > 0,
            "with_kvm": env.get("with_kvm"), "sched_fifo": env.get("fifo") == "1",
            "qemu": qemu, "vmm_has_window": window_support,
        },
        "config": {
            "quick": config["quick"] == 1, "loads": words(config["levels"]),
            "intervals_us": [float(w) for w in words(config["intervals"])],
            "timers_per_cell": [float(w) for w in config["counts"].split("+")],
            "repeat": config["repeat"], "anchor_repeat": config["anchor_repeat"],
            "drift_seconds_per_clocksource": config["drift_seconds"],
            "drift_loads": words(config["drift_loads"]),
            "variants": words(config["variants"]),
            "reference_loads": words(config["reference_loads"]),
            "qemu_loads": words(config["qemu_loads"]) if qemu else [],
            "guest_vcpus": 1, "guest_memory_mib": 256,
            "kvmclock": True, "guest_cmdline": config["cmdline"],
            "load": "N busy loops (bench/busy-loop) per host CPU pinned with taskset; "
                    "io: one fsync writer (64 KiB x 64) per CPU",
            "fifo_priority": "fifo:50 (outsourcing.priority; chrt -f 50 for host-fifo)",
            "window": ({"priority": "fifo:50", "window": config["window_config"],
                        "advance_us": "auto"} if window_support else None),
            "rtvcpu": "chrt -f 40 kairos run (every VMM thread SCHED_FIFO 40), window off, advance 0",
            "reserve": {"runtime_ns": config["reserve_runtime_ns"],
                        "period_ns": config["reserve_period_ns"],
                        "deadline_ns": config["reserve_period_ns"],
                        "applied": "chrt -d on each kairos-vcpuN thread at the guest ready line"},
        },
        "elapsed_s": config["elapsed"],
        "emulated_machine_retries": config["infra_retries"],
        "guest_triple_fault_retries": guest_retries,
        "skipped": config["skipped"] + [
            {"load": b.get("load"), "variant": b.get("variant"), "reason": b["skipped"]}
            for b in boots if b.get("skipped") is not None],
        "cells": sorted(cells, key=lambda c: sort_key(
            [c["interval_us"], c["load"], order_of(MODE_ORDER, c["mode"])])),
        "ratios_p99_vs_emulated": [
            {"load": c["load"], "interval_us": c["interval_us"], "mode": c["mode"],
             "ratio": ratio(c["p99_us"], p99(c["load"], "emulated", c["interval_us"]))}
            for c in cells if c["mode"] not in ("emulated", "roundtrip")],
        "ratios_p99_kernel_outsourced_vs_hrtimer": [
            {"load": c["load"], "interval_us": c["interval_us"],
             "ratio": ratio(c["p99_us"], p99(c["load"], "kernel-hrtimer", c["interval_us"]))}
            for c in cells if c["mode"] == "kernel-outsourced"],
        "price": sorted(price, key=lambda p: sort_key(
            [p["load"], order_of(VARIANT_ORDER, p["variant"])])),
        "throughput_anchors": throughput_anchors,
        "decomposition": decomposition,
        "ratios_window": ratios_window,
        "drift": drift,
        "drift_series": read_series(work),
    }


# ------------------------------------------------------------ the tables


def table(columns, rows):
    """A table as printf's %Ns (right-aligned) and %-Ns (left) make it:
    COLUMNS are (heading, width) pairs, a negative width for the left."""
    fmt = " ".join(f"%{width}s" for _, width in columns)
    return ([fmt % tuple(heading for heading, _ in columns)] +
            [fmt % tuple(text(v, null="") for v in values) for values in rows])


def ms(ns):
    return "-" if ns is None else text(jq_round(ns / 1e6 * 10) / 10)


def dash(value):
    return "-" if value is None or value is False else value


def thousandth(value):
    return None if value is None else jq_round(value * 1000) / 1000


def tables(report, with_drift):
    """The readable tables, as lines."""
    out = [""]
    out += table(
        [("load", -5), ("mode", -24), ("interval", 8), ("runs", 5), ("p50_us", 10),
         ("p99_us", 10), ("p99 range (runs)", 21), ("p99.9_us", 10), ("max_us", 10),
         ("missed", 7)],
        [[c["load"], c["mode"], c["interval_us"], c["runs"], c["p50_us"], c["p99_us"],
          f"{text(c['p99_min_us'])}-{text(c['p99_max_us'])}", c["p999_us"], c["max_us"],
          c["missed"]] for c in report["cells"]])
    out += ["", "p99 ratio against emulated (same load, same interval):"]
    for r in report["ratios_p99_vs_emulated"]:
        mode = r["mode"]
        if mode.startswith("outsourced") or mode.startswith("emulated") or mode == "qemu-kvm":
            out.append(f"  load {r['load']}, {text(r['interval_us'])} us: {mode} / emulated = "
                       f"{text(alt(r['ratio'], 'n/a'))}")
    for r in report["ratios_p99_kernel_outsourced_vs_hrtimer"]:
        out.append(f"  load {r['load']}, {text(r['interval_us'])} us: kernel-outsourced / "
                   f"kernel-hrtimer = {text(alt(r['ratio'], 'n/a'))}")
    out += ["",
            "price per boot, from the guest's ready line to the VM's exit (raised: CPU time at raised",
            "priority; loops, loops_cpu: the busy loops' iterations per second and CPU share against the",
            "host anchors at that load, 1 = no loss):"]
    out += table(
        [("load", -5), ("variant", -8), ("measured_s", 10), ("raised_cpu_ms", 14),
         ("raised_ms/s", 12), ("raised_ms/s (whole)", 20), ("raised_us/wakeup", 17),
         ("vmm_cpu_ms", 12), ("vcpu_us/wakeup", 15), ("loops", 8), ("loops_cpu", 9)],
        [[p["load"], p["variant"], dash(p["measured_s"]), ms(p["raised_cpu_ns"]),
          dash(p["raised_cpu_ms_per_s"]), dash(p["raised_cpu_ms_per_s_whole_run"]),
          dash(p["raised_cpu_per_wakeup_us"]),
          ms(p["vmm_cpu_ns"]), dash(p["vcpu_cpu_per_wakeup_us"]),
          dash(p["throughput_fraction"]), dash(p["loops_cpu_share_fraction"])]
         for p in report["price"]])
    for p in report["price"]:
        w = p["window"]
        if w is None or not (p["variant"] == "window" or alt(w.get("opened"), 0) > 0):
            continue

        def rounded(value, scale):
            return "?" if value is None else text(jq_round(value / scale))

        def seen(key):
            return text(alt(w.get(key), "?"))
        out.append(
            f"  window in the {p['variant']} boot at load {p['load']}: {seen('policy')}, opened "
            f"{seen('opened')}, closed by the guest {seen('closed_by_guest')}, by timeout "
            f"{seen('closed_by_timeout')}, by detach {seen('closed_by_detach')}, budget exhausted "
            f"{seen('budget_exhausted')}; open {rounded(w.get('open_ns'), 1e6)} ms, vCPU CPU inside "
            f"{rounded(w.get('cpu_ns'), 1e6)} ms; lead {rounded(w.get('lead_ns'), 1e3)} us, advance "
            f"{rounded(p['advance_ns'], 1e3)} us")
    for s in report["skipped"]:
        out.append(f"  skipped: {text(s.get('variant'))} at load {text(s.get('load'))}: "
                   f"{text(s.get('reason'))}")
    out += ["",
            "where the time went, us: host timer = the VMM timer thread's lateness (per boot, pooled over",
            "its modes); run delay = the vCPU's run-queue wait per wake-up (the cell's guest steal time,",
            "else per boot); rest = guest mean - host timer p50 - run delay (the guest's own processing):"]
    out += table(
        [("load", -5), ("mode", -24), ("interval", 8), ("guest_p50", 10), ("guest_mean", 10),
         ("host_timer_p50", 15), ("host_timer_p99", 15), ("run_delay/wakeup", 17),
         ("guest_rest", 11)],
        [[d["load"], d["mode"], d["interval_us"], d["guest_p50_us"], dash(d["guest_mean_us"]),
          dash(d["host_timer_lateness_p50_us"]), dash(d["host_timer_lateness_p99_us"]),
          dash(d["vcpu_run_delay_per_wakeup_us"]), dash(d["guest_rest_us"])]
         for d in report["decomposition"]])
    out += ["", "priority window: outsourced+window against (same load, same interval; raised CPU "
                "per second and per wake-up):"]
    if not report["ratios_window"]:
        out.append("  no outsourced+window cells")
    for r in report["ratios_window"]:
        def shown(key):
            return text(alt(r[key], "n/a"))
        out.append(
            f"  load {r['load']}, {text(r['interval_us'])} us: p99 / emulated = "
            f"{shown('p99_outsourced_window_vs_emulated')}, p99 / host-fifo = "
            f"{shown('p99_outsourced_window_vs_host_fifo')}, p50 / emulated = "
            f"{shown('p50_outsourced_window_vs_emulated')}, raised CPU window / rtvcpu = "
            f"{shown('raised_cpu_window_vs_rtvcpu')} per s, "
            f"{shown('raised_cpu_per_wakeup_window_vs_rtvcpu')} per wake-up")
    if with_drift:
        out.append("")
        out += table(
            [("load", -5), ("clocksource", -10), ("samples", 8), ("drift us/s (env.)", 20),
             ("drift us/s (plain)", 20), ("max deviation us", 18)],
            [[d["load"], d["clocksource"], d["samples"], thousandth(d["drift_us_per_s"]),
              thousandth(d["drift_plain_fit_us_per_s"]),
              None if d["max_deviation_us"] is None else jq_round(d["max_deviation_us"])]
             for d in report["drift"]])
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="bench/timer-latency's work folder")
    parser.add_argument("--json", required=True, help="where the report goes")
    parser.add_argument("--levels", required=True, help='load levels, e.g. "0 2 io"')
    parser.add_argument("--intervals", required=True, help='intervals in us, e.g. "1000 10000"')
    parser.add_argument("--counts", required=True, help='timers per cell per interval, "600+100"')
    parser.add_argument("--repeat", type=int, required=True)
    parser.add_argument("--anchor-repeat", type=int, required=True)
    parser.add_argument("--drift-seconds", type=int, required=True)
    parser.add_argument("--drift-loads", default="")
    parser.add_argument("--variants", required=True)
    parser.add_argument("--reference-loads", default="")
    parser.add_argument("--qemu-loads", default="")
    parser.add_argument("--quick", type=int, choices=(0, 1), default=0)
    parser.add_argument("--elapsed", type=int, required=True, help="seconds the run took")
    parser.add_argument("--cmdline", required=True, help="the guest's base command line")
    parser.add_argument("--window-support", type=int, choices=(0, 1), required=True)
    parser.add_argument("--window-config", type=json.loads, default={},
                        help="the window section the window variant ran with (JSON)")
    parser.add_argument("--reserve-runtime-ns", type=int, required=True)
    parser.add_argument("--reserve-period-ns", type=int, required=True)
    parser.add_argument("--kvm", required=True, help="hardware or emulated (how)")
    parser.add_argument("--infra-retries", type=int, default=0,
                        help="emulated machines run again after they died or hung")
    parser.add_argument("--skipped", type=json.loads, default=[],
                        help="variants skipped before any boot (JSON array)")
    args = parser.parse_args(argv)
    config = {k: v for k, v in vars(args).items()}
    report = build_report(args.work, config)
    Path(args.json).write_text(dumps(report) + "\n")
    drift_file = Path(args.work) / "drift.tsv"
    with_drift = drift_file.exists() and drift_file.stat().st_size > 0
    print("\n".join(tables(report, with_drift)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
