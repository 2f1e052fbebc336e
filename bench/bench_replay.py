"""Replay benchmark: ``python bench/bench_replay.py [--events N] [--dispatchers N]``.

Prints events/s of a full replay, its ratio to the time msgspec alone needs to decode the same
file with the same typed decoder, and the peak memory of each. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from budget.config import BudgetConfig, MiB  # noqa: E402
from traces.closed_loop import Batch, ClosedLoop, Source  # noqa: E402
from traces.writer import TraceWriter  # noqa: E402


def make_trace(path: str, events: int, dispatchers: int, seed: int = 42,
               config: dict[str, int] | None = None) -> None:
    """A closed-loop workload: Zipf-skewed tables, 1-4 DML batches, 50-500 ms flushes."""
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) ** 0.8 for i in range(dispatchers)]
    total_batches = events / 3.5  # a batch: 1 enqueue line and 2.5 flush lines on average
    scale = total_batches / sum(weights)
    span = 120.0  # seconds of trace time

    def source(i: int):  # type: ignore[no-untyped-def]
        n = max(1, round(weights[i] * scale))
        every = span / n
        t = rng.uniform(0, every)
        for _ in range(n):
            k = rng.randint(1, 4)
            yield Batch(t, [rng.randint(4 << 10, 2 * MiB) for _ in range(k)],
                        [rng.uniform(0.05, 0.5) for _ in range(k)])
            t += rng.expovariate(1 / every)

    with open(path, "wb") as f:
        w = TraceWriter(f)
        config = config or {"area_quota": 1 << 30}
        w.header(changefeed="bench/cf", sink="cloudstorage", config=config)
        loop = ClosedLoop(w, BudgetConfig().merged(config), "bench/cf", "cloudstorage")
        for i in range(dispatchers):
            loop.add(Source(f"table-{i:05d}", source(i)))
        loop.run()
        w.close()


CHILD_DECODE = """
import sys, msgspec, time
from traces.format import Line
dec = msgspec.json.Decoder(Line)
t = time.perf_counter()
n = 0
with open(sys.argv[1], 'rb') as f:
    for raw in f:
        dec.decode(raw)
        n += 1
import resource
print(n, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

CHILD_REPLAY = """
import sys, time
from traces.replay import replay
t = time.perf_counter()
r = replay(sys.argv[1], lambda rec: None)
import resource
print(r.events, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def child(code: str, path: str) -> tuple[int, float, int]:
    """Run in a fresh interpreter; returns (count, seconds, its peak RSS in KiB)."""
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(HERE)).stdout.split()
    return int(out[0]), float(out[1]), int(out[2])


def timed_cli(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli", *args], stdout=subprocess.DEVNULL, check=True,
                   cwd=os.path.dirname(HERE))
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--dispatchers", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--trace", help="benchmark this trace instead of a generated one")
    ap.add_argument("--light", action="store_true",
                    help="budgets so large that almost nothing blocks (few decisions)")
    a = ap.parse_args()
    path = a.trace
    if path is None:
        os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
        kind = "light" if a.light else "busy"
        path = os.path.join(HERE, "out", f"bench-{kind}-{a.events}-{a.dispatchers}.jsonl")
        if not os.path.exists(path):
            t = time.perf_counter()
            make_trace(path, a.events, a.dispatchers,
                       config={"per_high": 1 << 30, "per_low": 1 << 29, "area_quota": 64 << 30}
                       if a.light else None)
            print(f"generated {path} in {time.perf_counter() - t:.1f} s")
    size = os.path.getsize(path)
    decode = min((child(CHILD_DECODE, path) for _ in range(a.repeat)), key=lambda r: r[1])
    rep = min((child(CHILD_REPLAY, path) for _ in range(a.repeat)), key=lambda r: r[1])
    jsonl = min(timed_cli(["run", path, "--format", "jsonl", "--no-progress"])
                for _ in range(a.repeat))
    table = min(timed_cli(["run", path, "--format", "table", "--no-progress"])
                for _ in range(a.repeat))
    lines = decode[0]
    print(f"trace: {path} ({size / MiB:.1f} MiB, {lines:,} lines, {rep[0]:,} events)")
    print(f"decode only (msgspec, typed):  {decode[1]:6.2f} s  {lines / decode[1]:>12,.0f} lines/s"
          f"                        peak RSS {decode[2] / 1024:.0f} MiB")
    print(f"replay (model, no views):      {rep[1]:6.2f} s  {rep[0] / rep[1]:>12,.0f} events/s"
          f"  ratio to decode {rep[1] / decode[1]:.2f}x  peak RSS {rep[2] / 1024:.0f} MiB")
    print(f"run --format jsonl (process):  {jsonl:6.2f} s  {rep[0] / jsonl:>12,.0f} events/s")
    print(f"run --format table (process):  {table:6.2f} s  {rep[0] / table:>12,.0f} events/s")


if __name__ == "__main__":
    main()
