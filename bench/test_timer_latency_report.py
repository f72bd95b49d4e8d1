"""Unit tests of bench/timer_latency_report.py (python3 -m unittest; no VM).

testdata/timer-latency/work is a work folder as bench/timer-latency leaves it
(rebuilt from bench/results/timer-latency.json, with an io level, a boot
without --stats, a skipped reservation, a QEMU boot, a guest retry, runs
without a mean); expected.json and expected-tables.txt are its report: at
first, byte for byte, what the jq report this tool replaced made of it, then
with the raised CPU per wake-up added.
"""

import contextlib
import io
import json
import tempfile
import unittest
from pathlib import Path

import timer_latency_report as report

TESTDATA = Path(__file__).resolve().parent / "testdata" / "timer-latency"

GOLDEN_ARGS = [
    "--levels", "0 4 io", "--intervals", "1000", "--counts", "600", "--repeat", "2",
    "--anchor-repeat", "2", "--drift-seconds", "5", "--drift-loads", "0 4",
    "--variants", "kairos fifo window rtvcpu reserve", "--reference-loads", "0 4",
    "--qemu-loads", "0 4", "--quick", "0", "--elapsed", "1312",
    "--cmdline", "console=ttyS0 reboot=k panic=-1 pci=off quiet kairos.init=run:/usr/bin/timer-bench-run",
    "--window-support", "1", "--window-config", '{"policy":"fifo","runtime_us":8000,"period_us":10000}',
    "--reserve-runtime-ns", "1000000", "--reserve-period-ns", "10000000",
    "--kvm", "emulated (scripts/with-kvm: AMD-V machine under QEMU TCG)", "--infra-retries", "1",
    "--skipped", '[{"load":"all","variant":"window","reason":"kairos check refuses"}]',
]


def run_tool(work, extra_args=GOLDEN_ARGS):
    """main() over WORK: (the JSON text, the tables)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "report.json"
        tables = io.StringIO()
        with contextlib.redirect_stdout(tables):
            report.main(["--work", str(work), "--json", str(out)] + extra_args)
        return out.read_text(), tables.getvalue()


class JqSemantics(unittest.TestCase):
    def test_numbers_print_as_jq_prints_them(self):
        cases = [(1.0, "1"), (0.1, "0.1"), (1e17, "1e+17"), (1e-5, "1e-05"),
                 (123456789012.5, "123456789012.5"), (3e16, "3e+16"), (1e6, "1000000"),
                 (0.0001, "0.0001"), (1e-7, "1e-07"), (-2.5, "-2.5"),
                 (12345678901234567890.0, "12345678901234567000"), (0.0, "0"), (7, "7"),
                 (True, "true")]
        for value, printed in cases:
            self.assertEqual(report.format_number(value), printed, value)

    def test_round_goes_half_away_from_zero(self):
        self.assertEqual(report.jq_round(2.5), 3)
        self.assertEqual(report.jq_round(-2.5), -3)
        self.assertEqual(report.jq_round(0.5), 1)
        self.assertEqual(report.jq_round(1.49), 1)

    def test_alternative_skips_null_and_false_only(self):
        self.assertEqual(report.alt(None, "-"), "-")
        self.assertEqual(report.alt(False, "-"), "-")
        self.assertEqual(report.alt(0, "-"), 0)

    def test_nulls_sort_first(self):
        self.assertEqual(report.median([3.0, None, 1.0]), 1.0)
        self.assertIsNone(report.median([None, None, 5.0]))
        self.assertIsNone(report.median([]))
        self.assertIsNone(report.jq_min([2.0, None]))
        self.assertEqual(report.jq_max([2.0, None]), 2.0)

    def test_json_layout_matches_jq(self):
        self.assertEqual(report.dumps({"a": [], "b": {}, "c": [1.0, {"x": None}]}),
                         '{\n  "a": [],\n  "b": {},\n  "c": [\n    1,\n    {\n      "x": null\n'
                         '    }\n  ]\n}')


class Figures(unittest.TestCase):
    def test_ratio_needs_both_and_a_positive_divisor(self):
        self.assertEqual(report.ratio(3.0, 2.0), 1.5)
        self.assertEqual(report.ratio(1.0, 3.0), 0.333)
        self.assertIsNone(report.ratio(None, 2.0))
        self.assertIsNone(report.ratio(1.0, 0.0))

    def test_cell_takes_medians_over_runs_and_sums_samples_and_missed(self):
        rows = [["0", "emulated", "1000", str(run), "300", str(p50), str(p99), "900", str(mx), "2",
                 "kairos", "", ""]
                for run, p50, p99, mx in ((1, 100, 500, 700), (2, 90, 800, 1500), (3, 110, 600, 650))]
        (cell,) = report.cells_from(rows)
        self.assertEqual((cell["runs"], cell["samples"], cell["missed"]), (3, 900, 6))
        self.assertEqual((cell["p50_us"], cell["p99_us"]), (100, 600))
        self.assertEqual((cell["p99_min_us"], cell["p99_max_us"], cell["max_us"]), (500, 800, 1500))
        self.assertEqual(cell["load_per_cpu"], 0)

    def test_io_load_has_no_per_cpu_figure(self):
        (cell,) = report.cells_from([["io", "host", "1000", "1", "300", "1", "2", "3", "4", "0", "host"]])
        self.assertIsNone(cell["load_per_cpu"])

    def test_guest_mean_is_weighted_by_samples(self):
        rows = [["4", "outsourced", "1000", "1", "100", "", "", "", "", "", "kairos", "10", "500"],
                ["4", "outsourced", "1000", "2", "300", "", "", "", "", "", "kairos", "20", "100"],
                ["4", "outsourced", "1000", "3", "300", "", "", "", "", "", "kairos", "", ""]]
        (side,) = report.guest_side_from(rows)
        self.assertEqual(side["mean_us"], 17.5)  # (10 * 100 + 20 * 300) / 400
        self.assertEqual(side["steal_per_wakeup_us"], 1.5)  # 600 / 400

    def test_raised_cpu_per_variant(self):
        boot = {"variant": "window", "at_ready": {"timer_thread_cpu_ns": 100},
                "stats": {"outsourcing": {"timer_thread_cpu_ns": 400, "window": {"cpu_ns": 50}}}}
        self.assertEqual(report.raised(boot), [350, 450])
        self.assertEqual(report.raised(dict(boot, variant="kairos")), [0, 0])
        self.assertEqual(report.raised(dict(boot, variant="fifo")), [300, 400])
        self.assertEqual(report.raised({"variant": "rtvcpu"}), [None, None])

    def test_raised_cpu_per_wakeup_does_not_flatter_a_slower_boot(self):
        boot = {"variant": "window", "load": "4", "timer_wakeups": 4, "measured_s": 2.0,
                "at_ready": {"timer_thread_cpu_ns": 0},
                "stats": {"outsourcing": {"timer_thread_cpu_ns": 1_000_000, "window": {"cpu_ns": 3_000_000}}}}
        price = report.price_of(boot, [])
        self.assertEqual(price["raised_cpu_per_wakeup_us"], 1000)  # 4 ms over 4 wake-ups
        self.assertEqual(price["raised_cpu_ms_per_s"], 2)
        slower = report.price_of(dict(boot, measured_s=4.0), [])
        self.assertEqual(slower["raised_cpu_per_wakeup_us"], 1000)
        self.assertEqual(slower["raised_cpu_ms_per_s"], 1)
        self.assertIsNone(report.price_of(dict(boot, timer_wakeups=0), [])["raised_cpu_per_wakeup_us"])

    def test_vcpu_figures_fall_back_to_the_polled_snapshot(self):
        boot = {"stats": {"vcpus": [{"cpu_ns": 5}]}, "at_ready": {"vcpu_cpu_ns": 10},
                "last_polled": {"vcpu_cpu_ns": 42}}
        self.assertEqual(report.vcpu_end(boot, "cpu_ns", "vcpu_cpu_ns"), 42)
        self.assertEqual(report.vcpu_end_source(boot),
                         "polled /proc/PID/task/*/schedstat (last second)")
        boot["stats"]["vcpus"][0]["cpu_ns"] = 20
        self.assertEqual(report.vcpu_end(boot, "cpu_ns", "vcpu_cpu_ns"), 20)
        self.assertEqual(report.vcpu_end_source(boot), "--stats")

    def test_decomposition_leaves_the_host_timer_out_of_guest_timer_modes(self):
        cell = {"load": "0", "mode": "emulated", "interval_us": 1000.0, "p50_us": 50.0, "p99_us": 90.0}
        boot = {"timer_wakeups": 100, "at_ready": {"vcpu_run_delay_ns": 0},
                "stats": {"vcpus": [{"run_delay_ns": 1_000_000}],
                          "outsourcing": {"lateness_ns": {"p50": 20_000, "p99": 40_000, "samples": 9}}}}
        own = report.decomposition_of(cell, "kairos", boot, None)
        self.assertIsNone(own["host_timer_lateness_p50_us"])
        self.assertEqual(own["vcpu_run_delay_per_wakeup_us"], 10)  # 1 ms / 100 wake-ups
        self.assertEqual(own["guest_rest_us"], 40)  # p50 50 - run delay 10
        outsourced = report.decomposition_of(dict(cell, mode="outsourced"), "kairos", boot,
                                             {"mean_us": 60.0, "steal_per_wakeup_us": 5.0})
        self.assertEqual(outsourced["host_timer_lateness_p50_us"], 20)
        self.assertEqual(outsourced["guest_rest_us"], 35)  # mean 60 - host 20 - steal 5
        self.assertEqual(outsourced["guest_rest_of"], "guest mean")


class GoldenReport(unittest.TestCase):
    def test_json_and_tables_match_the_jq_report(self):
        got_json, got_tables = run_tool(TESTDATA / "work")
        self.assertEqual(got_json, (TESTDATA / "expected.json").read_text())
        self.assertEqual(got_tables, (TESTDATA / "expected-tables.txt").read_text())

    def test_a_cut_short_stats_file_counts_as_none(self):
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch)
            for path in (TESTDATA / "work").iterdir():
                (work / path.name).write_bytes(path.read_bytes())
            (work / "stats-0-kairos.json").write_text('{"runtime_ms": 12')
            with contextlib.redirect_stderr(io.StringIO()):
                got_json, _ = run_tool(work)
        price = [p for p in json.loads(got_json)["price"]
                 if p["load"] == "0" and p["variant"] == "kairos"]
        self.assertEqual(len(price), 1)
        self.assertIsNone(price[0]["runtime_s"])


if __name__ == "__main__":
    unittest.main()
