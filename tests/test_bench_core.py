"""The benchmark harness's bookkeeping: ratios, targets, the markdown and the CLI's bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.bench import wan
from infra.bench.core import BEGIN, END, CaseResult, Measure, Target, case_markdown, load_all, merge, save, write_markdown

REPO = Path(__file__).resolve().parent.parent
DCOPS = str(Path(sys.executable).parent / "dcops")


def sample() -> CaseResult:
    r = CaseResult("wan", "WAN rollout")
    r.add(Measure("floor.10", "floor", [1.0, 2.0, 3.0], n=10))
    r.add(Measure("py.again.10", "pyinfra re-apply", [4.0, 5.0, 100.0], n=10, baseline="floor.10"))
    r.targets.append(Target("within 3x the floor", "2.50x", False))
    r.notes.append("the time goes into ssh")
    r.machine = {"cores": 2, "memory_mib": 24 * 1024, "versions": {"pyinfra": "3.10.0"}}
    return r


def test_ratio_is_of_medians_and_only_with_a_baseline() -> None:
    r = sample()
    assert r.ratio("py.again.10") == 2.5  # 5 / 2: medians, so one slow run does not skew it
    assert r.ratio("floor.10") is None
    assert r.ratio("missing") is None


def test_markdown_has_min_median_max_ratio_and_targets() -> None:
    md = case_markdown(sample())
    row = next(ln for ln in md.splitlines() if ln.startswith("| pyinfra re-apply"))
    assert "| 10 | 3 | 4.00 s | 5.00 s | 100.0 s | **2.50x** floor |" in row
    assert "| floor | 10 | 3 |" in md and "| baseline |" in md
    assert "| within 3x the floor | 2.50x | **no** |" in md
    assert "- the time goes into ssh" in md


def test_results_round_trip_and_text_outside_the_block_is_kept(tmp_path: Path) -> None:
    md = tmp_path / "benchmarks.md"
    md.write_text(f"# Benchmarks\n\nintro by hand\n\n{BEGIN}\nold figures\n{END}\n\n## Profiling notes\nby hand\n")
    save(sample(), tmp_path / "bench")
    got = load_all(tmp_path / "bench")
    assert [g.case for g in got] == ["wan"] and got[0].measures[1].samples == [4.0, 5.0, 100.0]
    write_markdown(md, got)
    text = md.read_text()
    assert "intro by hand" in text and "## Profiling notes\nby hand" in text
    assert "old figures" not in text and "**2.50x** floor" in text
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert "| pyinfra | 3.10.0 |" in text


def test_cli_rejects_bad_options_before_running_anything(tmp_path: Path) -> None:
    out = tmp_path / "b.md"
    for args, word in ((["--cases", "wan,nope"], "nope"), (["--sites", "10,x"], "--sites"), (["--name", "Too-Long"], "--name")):
        p = subprocess.run([DCOPS, "bench", *args, "--output", str(out)], capture_output=True, text=True, cwd=REPO)
        assert p.returncode == 2, p.stdout + p.stderr
        assert word in p.stderr
    assert not out.exists() and not (tmp_path / "bench").exists()


def test_cli_lists_the_cases_and_shows_saved_results(tmp_path: Path) -> None:
    p = subprocess.run([DCOPS, "bench", "--list"], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0
    assert [ln.split()[0] for ln in p.stdout.splitlines()] == ["wan", "checks", "provision", "sla", "memory", "province"]
    save(sample(), tmp_path / "bench")
    p = subprocess.run([DCOPS, "bench", "--show", "--output", str(tmp_path / "benchmarks.md")],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0 and "**2.50x** floor" in p.stdout
    json.loads((tmp_path / "bench" / "wan.json").read_text())


def test_a_rerun_replaces_what_it_measured_again_and_keeps_the_rest_with_their_own_baselines() -> None:
    old = CaseResult("wan", "WAN rollout", started=1000.0)
    old.add(Measure("floor.10", "floor", [2.0], n=10))
    old.add(Measure("pyinfra.again.10", "pyinfra: no-change re-apply", [6.0], n=10, baseline="floor.10"))
    old.add(Measure("floor.200", "floor", [40.0], n=200))
    old.add(Measure("pyinfra.again.200", "pyinfra: no-change re-apply", [100.0], n=200, baseline="floor.200"))
    old = merge(None, old)
    new = CaseResult("wan", "WAN rollout", started=2000.0)  # Ansible only, 10 sites: a new floor.10
    new.add(Measure("floor.10", "floor", [1.0], n=10))
    new.add(Measure("ansible-default.again.10", "Ansible default settings: no-change re-apply", [30.0], n=10,
                    baseline="floor.10"))
    new.add(Measure("ansible-tuned.again.10", "Ansible tuned: no-change re-apply", [5.0], n=10, baseline="floor.10"))
    m = merge(old, new)
    assert len(m.runs) == 2 and [r["started"] for r in m.runs] == [1000.0, 2000.0]
    # every earlier figure is kept; pyinfra's 10-site ratio still uses the floor of its own run
    assert m.get("pyinfra.again.10").run == 0 and m.ratio("pyinfra.again.10") == 3.0
    assert m.get("floor.10").samples == [1.0] and m.get("floor.10", 0).samples == [2.0]
    assert m.ratio("ansible-default.again.10") == 30.0 and m.ratio("pyinfra.again.200") == 2.5
    assert [x.n for x in m.measures] == sorted(x.n for x in m.measures)  # grouped by site count
    wan.targets(m)  # over the merged figures: re-apply target at 200; no 5x target: pyinfra and Ansible default never ran in one run
    goals = {t.goal.split(" ")[0] + str(t.met): t.measured for t in m.targets}
    assert goals == {"no-changeTrue": "2.50x the floor"}, goals
    m.add(Measure("pyinfra.again.10", "pyinfra: no-change re-apply", [5.0], n=10, baseline="floor.10", run=1))
    wan.targets(m)  # now both in run 1 at 10 sites: 30 / 5 = 6x
    five = [t for t in m.targets if "5x" in t.goal]
    assert len(five) == 1 and five[0].met and "6.0x faster at 10 sites" in five[0].measured and "one run (10)" in five[0].goal
    md = case_markdown(m)
    assert "figures from 2 runs" in md and "| run |" in md
    assert "| pyinfra: no-change re-apply | 10 | 1 | 1 | 6.00 s | 6.00 s | 6.00 s | **3.00x** floor |" in md
    # a third run that repeats pyinfra at 10 retires run 1's floor.10 (no kept figure needs it)
    third = CaseResult("wan", "WAN rollout", started=3000.0)
    third.add(Measure("floor.10", "floor", [1.5], n=10))
    third.add(Measure("pyinfra.again.10", "pyinfra: no-change re-apply", [3.0], n=10, baseline="floor.10"))
    m3 = merge(m, third)
    assert len([x for x in m3.measures if x.key == "floor.10"]) == 2  # run 2's, for the kept Ansible figures
    assert m3.ratio("pyinfra.again.10") == 2.0 and m3.ratio("ansible-tuned.again.10") == 5.0


def test_load_all_reads_only_case_figures(tmp_path):
    """Raw data kept beside the cases' figures in docs/bench (dr-lab-timings.json) is not a case."""
    import json

    from infra.bench import core

    (tmp_path / "dr-lab-timings.json").write_text(json.dumps({"failover_seconds": 40.8}))
    assert core.load_all(tmp_path) == []
    real = core.load_all()  # the committed figures, dr-lab-timings.json among them
    assert real and all(r.case for r in real)


def test_province_targets_are_judged_at_every_site_count() -> None:
    """Issue 18's targets, one line per site count measured: a miss at one count is not hidden by
    a pass at another."""
    from infra.bench import province as P
    from infra.bench.core import CaseResult, Measure

    r = CaseResult("province", "t")
    for n, floor, again, check, ad, rep, drift in ((10, 1.0, 1.7, 2.5, 5.0, [30.0], [100.0]),
                                                   (700, 60.0, 80.0, 110.0, 700.0, [50.0, 70.0], [500.0, 400.0])):
        r.add(Measure(f"floor.{n}", "floor", [floor], n=n))
        r.add(Measure(f"pyinfra.again.{n}", "pyinfra: again", [again], n=n, baseline=f"floor.{n}"))
        r.add(Measure(f"check-floor.{n}", "floor", [floor], n=n))
        r.add(Measure(f"check.{n}", "check", [check], n=n, baseline=f"check-floor.{n}"))
        r.add(Measure(f"ansible-default.again.{n}", "ad", [ad], n=n, baseline=f"floor.{n}"))
        r.add(Measure(f"report.vi.{n}", "vi", rep, n=n))
        r.add(Measure(f"drift.{n}", "drift", drift, n=n))
    P.targets(r)
    got = {t.goal.split(":")[0] + " " + t.goal.split(" ")[2]: t.met for t in r.targets}
    assert len(r.targets) == 10, r.targets
    met = {(t.goal.split(" ")[0], t.goal.split(":")[1].split()[0]): t.met for t in r.targets}
    assert met[("10", "no-change")] is False and met[("700", "no-change")] is True  # 1.7x and 1.33x against 1.5x
    assert met[("10", "full")] is False and met[("700", "full")] is True            # 2.5x and 1.83x against 2x
    assert met[("10", "pyinfra")] is False and met[("700", "pyinfra")] is True      # 2.9x and 8.75x against 5x
    assert met[("10", "the")] is True and met[("700", "the")] is False              # the slowest report, 70 s
    assert met[("10", "a")] is True and met[("700", "a")] is True                   # drift under 10 minutes
    assert got


def test_province_compares_pyinfra_and_ansible_only_within_one_run() -> None:
    """Ansible's re-apply kept from an earlier run is not set against pyinfra's of a later one: the
    5x target is left out, and a note says how to measure both in one run."""
    from infra.bench import province as P
    from infra.bench.core import CaseResult, Measure

    r = CaseResult("province", "t")
    r.add(Measure("floor.700", "floor", [100.0], n=700))
    r.add(Measure("ansible-default.again.700", "ad", [1000.0], n=700, baseline="floor.700"))
    r.add(Measure("pyinfra.again.700", "pyinfra: again", [120.0], n=700, baseline="floor.700"))
    r.get("ansible-default.again.700").run = 0
    r.get("pyinfra.again.700").run = 2
    P.targets(r)
    assert not [t for t in r.targets if "Ansible" in t.goal]
    assert any("not compared" in n and "run 1" in n and "run 3" in n for n in r.notes), r.notes
    r.get("pyinfra.again.700").run = 0
    r.notes.clear()
    P.targets(r)
    assert [t.met for t in r.targets if "Ansible" in t.goal] == [True] and not r.notes


def test_a_stopped_bench_ends_processes_that_left_the_group(tmp_path):
    """run_group, stopped (here by an exception raised while it waits, as Ctrl-C does), ends the
    command's process group and every process below it in another session (pulumi's plugins
    are): none is left running."""
    import signal
    import subprocess
    import sys
    import time

    from infra.bench.wan import run_group

    pidfile = tmp_path / "pids"
    child = ("import subprocess, sys, time\n"
             "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], start_new_session=True)\n"
             f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
             "time.sleep(120)\n")

    def stop(*_):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.5)
        with pytest.raises(KeyboardInterrupt):
            run_group([sys.executable, "-c", child])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    pid = int(pidfile.read_text())
    for _ in range(50):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        subprocess.run(["kill", "-9", str(pid)])
        pytest.fail(f"the grandchild {pid} in its own session outlived the stopped bench")
