"""The benchmark tables the book ships are measurements, not noise: per mechanism, time does
not fall as the sequence gets longer (DESIGN.md, "Measuring": a table whose times are not
monotone in n is noise — re-run it, never commit it).

Every mechanism the course benchmarks does at least as much work on a longer sequence, so its
true median time can only grow with n. The tolerance: between two consecutive measured lengths
n < n', time(n') >= 0.8 * time(n). The 20 % slack covers what a quiet machine still gives —
timer resolution and the spread of a median of three repeats on runs of a few milliseconds at
short lengths, where fixed costs (Python, allocation, thread start-up) are most of the time and
the work grows slowly — but not what a busy one gives (a time that halves as n doubles, as in
the tables of a shared machine). Rows whose status is not ``ok`` (over budget, skipped, no
causal form) have no time and are left out.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "book" / "data"
COLUMNS = {"spec", "length", "time_s", "peak_mb"}
TOLERANCE = 0.8  # time at the next measured length >= TOLERANCE * time at this one


def _bench_tables() -> list[Path]:
    tables = []
    for path in sorted(DATA.glob("*.csv")):
        with path.open(newline="") as f:
            header = next(csv.reader(f), [])
        if COLUMNS <= set(header):
            tables.append(path)
    return tables


TABLES = _bench_tables()


def test_the_book_ships_benchmark_tables():
    assert TABLES, f"no CSV with columns {sorted(COLUMNS)} in {DATA}"


@pytest.mark.parametrize("path", TABLES, ids=[p.name for p in TABLES])
def test_time_grows_with_length_per_mechanism(path):
    times: dict[str, dict[int, float]] = defaultdict(dict)
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("status", "ok") != "ok" or not row["time_s"]:
                continue
            key = row["spec"] + (" causal" if row.get("causal") == "True" else "")
            times[key][int(row["length"])] = float(row["time_s"])
    drops = []
    for spec, by_length in sorted(times.items()):
        lengths = sorted(by_length)
        for short, long in zip(lengths, lengths[1:]):
            if by_length[long] < TOLERANCE * by_length[short]:
                drops.append(
                    f"{spec}: {1e3 * by_length[short]:.1f} ms at n={short} but "
                    f"{1e3 * by_length[long]:.1f} ms at n={long}"
                )
    assert not drops, (
        f"{path.name} is not monotone in n (time at n' < {TOLERANCE} x time at n < n'); "
        "re-measure it on a quiet machine (see book/measurement.md):\n  "
        + "\n  ".join(drops)
    )


PEER_RUNS = ["peers_forward", "peers_train", "peers_forward_causal"]


@pytest.mark.parametrize("name", PEER_RUNS)
def test_peer_tables_in_the_appendix_are_their_csvs(name):
    """The side-by-side tables the appendix includes (book/data/peers_*.md) are what
    scripts/bench_peers.py made from the CSV beside them, for each run, every attnkit
    mechanism next to its peer at n = 4096 and 16384; the appendix includes each."""
    import runpy

    script = runpy.run_path(str(DATA.parents[1] / "scripts" / "bench_peers.py"))
    with (DATA / f"{name}.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    shown = (DATA / f"{name}.md").read_text(encoding="utf-8").splitlines()
    meta = dict(
        mode=rows[0]["mode"], causal=rows[0]["causal"], settings="", machine="",
        date="", commit="", load_before=0.0, load_after=0.0,
    )  # fmt: skip
    remade = script["markdown_table"](rows, meta, dict(script["PAIRS"]))
    assert remade.splitlines()[1:] == shown[1:], f"{name}.md is not {name}.csv"
    assert shown[0].startswith(f"**{'causal ' if 'causal' in name else ''}")
    assert "load average" in shown[0] and "measured 20" in shown[0]
    measured = {(r["spec"], int(r["length"])) for r in rows}
    for ours, peer in script["PAIRS"]:
        assert {(ours, 4096), (ours, 16384), (peer, 4096), (peer, 16384)} <= measured
    appendix = (DATA.parent / "measurement.md").read_text(encoding="utf-8")
    assert f"data/{name}.md" in appendix
