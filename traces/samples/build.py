"""Builds the bundled sample traces: ``python -m traces.samples.build [DIR]``.

Each sample is synthesized closed-loop (paused dispatchers deliver nothing until woken), from a
fixed seed, so rebuilding gives byte-identical files; ``tests/test_samples.py`` checks that.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable, Iterator

from budget.config import BudgetConfig, MiB
from traces.closed_loop import Batch, ClosedLoop, Source
from traces.writer import TraceWriter

KiB = 1 << 10


def periodic(start: float, every: float, count: int, dmls: int, size: int, latency: float,
             rng: random.Random | None = None, jitter: float = 0.0) -> Iterator[Batch]:
    """``count`` batches of ``dmls`` DMLs of ``size`` bytes, one every ``every`` seconds."""
    t = start
    for _ in range(count):
        lat = latency
        if rng is not None and jitter:
            lat = latency * (1 + rng.uniform(-jitter, jitter))
        yield Batch(at=t, sizes=[size] * dmls, latencies=[lat] * dmls)
        t += every


def _write(path: str, changefeed: str, sink: str, config: dict[str, object],
           fill: Callable[[ClosedLoop, random.Random], None], seed: int) -> None:
    with open(path, "wb") as f:
        w = TraceWriter(f)
        w.header(changefeed=changefeed, sink=sink, config=config or None)
        loop = ClosedLoop(w, BudgetConfig().merged(config), changefeed, sink)
        fill(loop, random.Random(seed))
        loop.run()
        w.close()


def hot_table(loop: ClosedLoop, rng: random.Random) -> None:
    # One hot table writes 16 MiB (effective) every 20 ms into a sink that needs ~300 ms per
    # object: its own 128 MiB budget pauses it again and again. Five quiet tables never pause.
    loop.add(Source("orders", periodic(0.0, 0.02, 150, 8, 1 * MiB, 0.3, rng, 0.2)))
    for i in range(5):
        loop.add(Source(f"quiet-{i}", periodic(0.01 * i, 0.1, 30, 1, 64 * KiB, 0.05)))


def many_tables(loop: ClosedLoop, rng: random.Random) -> None:
    # 120 tables, each modest, together far above a 128 MiB global high: the global budget
    # pauses them and its wake rounds resume them in FIFO order.
    for i in range(120):
        loop.add(Source(f"t{i:03d}", periodic(rng.uniform(0, 0.05), rng.uniform(0.05, 0.15),
                                              12, 2, 512 * KiB, 0.4, rng, 0.5)))


def handoff(loop: ClosedLoop, rng: random.Random) -> None:
    # `hot` fills its own 16 MiB budget; meanwhile eight writers keep global in-flight at its
    # 64 MiB high, so when `hot` drains to its low the global budget takes it over (hand-off).
    loop.add(Source("hot", periodic(0.0, 0.01, 40, 4, 1 * MiB, 0.2, rng, 0.1)))
    for i in range(8):
        loop.add(Source(f"w{i}", periodic(0.005 + 0.001 * i, 0.05, 20, 2, 1 * MiB, 0.5)))


def stranded(loop: ClosedLoop, rng: random.Random) -> None:
    # A 600 MiB object fills the redo global budget; 100 small tables queue behind it. Its flush
    # ends at zero in flight and one round wakes 64; with nothing left in flight, no release
    # will ever run another round: 36 tables are stranded.
    loop.add(Source("bulk", iter([Batch(0.0, [300 * MiB], [2.0])])))
    for i in range(100):
        loop.add(Source(f"tbl-{i:03d}", iter([Batch(0.1 + 0.01 * i, [4 * KiB], [0.5])])))


def leak(loop: ClosedLoop, rng: random.Random) -> None:
    # Table churn: dropped tables are removed with objects in flight that never complete. Their
    # bytes stay counted, the global budget stays full, and survivors wait until the drain.
    for i in range(6):
        loop.add(Source(f"dropped-{i}", periodic(0.01 * i, 0.02, 4, 2, 2 * MiB, 5.0),
                        remove_at=0.5 + 0.05 * i, leak_on_remove=True))
    for i in range(10):
        loop.add(Source(f"live-{i}", periodic(0.2 + 0.01 * i, 0.1, 20, 1, 512 * KiB, 0.2)))


def legacy(loop: ClosedLoop, rng: random.Random) -> None:
    # A MySQL sink: no byte budget; every handled batch pauses the dispatcher until all its DMLs
    # are written, so each table has at most one batch in flight.
    for i in range(4):
        loop.add(Source(f"mysql-t{i}", periodic(0.01 * i, 0.02, 25, rng.randint(1, 4), 8 * KiB,
                                                0.05, rng, 0.8)))


def redo_and_storage(loop: ClosedLoop, rng: random.Random) -> None:
    # The same tables write to the redo log and to cloud storage; with memory-quota 512 MiB and
    # 50% for redo, each scope has its own 128 MiB global high and they never share it.
    for i in range(40):
        for sink, size, lat in (("redo", 512 * KiB, 0.1), ("cloudstorage", 2 * MiB, 0.6)):
            loop.add(Source(f"t{i:02d}", periodic(0.002 * i, 0.05, 16, 2, size, lat, rng, 0.3),
                            sink=sink))


def mixed(loop: ClosedLoop, rng: random.Random) -> None:
    # A short tour: a hot table, tables sharing the global budget, a removal that leaks, and a
    # MySQL changefeed beside the cloud-storage one.
    loop.add(Source("hot", periodic(0.0, 0.01, 30, 4, 1 * MiB, 0.15, rng, 0.2)))
    for i in range(12):
        loop.add(Source(f"t{i:02d}", periodic(0.003 * i, 0.04, 8, 2, 1 * MiB, 0.3, rng, 0.3)))
    loop.add(Source("dropped", periodic(0.05, 0.05, 2, 1, 2 * MiB, 9.0), remove_at=0.2,
                    leak_on_remove=True))
    loop.add(Source("m1", periodic(0.0, 0.05, 8, 2, 4 * KiB, 0.03), changefeed="default/mysql",
                    sink="mysql"))


SAMPLES: dict[str, tuple[str, str, dict[str, object], Callable, int]] = {
    "mixed.jsonl": ("default/tour", "cloudstorage",
                    {"per_low": 8 * MiB, "per_high": 16 * MiB, "area_quota": 96 * MiB},
                    mixed, 1),
    "hot-table.jsonl": ("default/orders", "cloudstorage", {}, hot_table, 2),
    "many-tables.jsonl": ("default/shop", "cloudstorage", {"area_quota": 256 * MiB},
                          many_tables, 3),
    "handoff.jsonl": ("default/handoff", "cloudstorage",
                      {"per_low": 8 * MiB, "per_high": 16 * MiB, "area_quota": 128 * MiB},
                      handoff, 4),
    "stranded.jsonl": ("default/redo-burst", "redo", {"area_quota": 1024 * MiB},
                       stranded, 5),
    "leak.jsonl": ("default/churn", "cloudstorage",
                   {"per_low": 8 * MiB, "per_high": 16 * MiB, "area_quota": 64 * MiB},
                   leak, 6),
    "legacy-mysql.jsonl": ("default/mysql", "mysql", {}, legacy, 7),
    "redo-and-storage.jsonl": ("default/both", "cloudstorage",
                               {"memory_quota": 512 * MiB, "redo_percentage": 50},
                               redo_and_storage, 8),
}


def build(directory: str) -> list[str]:
    out = []
    for name, (cf, sink, config, fill, seed) in SAMPLES.items():
        path = os.path.join(directory, name)
        _write(path, cf, sink, config, fill, seed)
        out.append(path)
    return out


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for p in build(target):
        print(p)
