"""Running a replay from the command line: the bundled sample, the progress bar, fan-out."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib import resources

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from budget.decisions import Decision
from budget.scope import Scope
from traces.replay import ReplayResult, replay

DEFAULT_SAMPLE = "mixed.jsonl"
#: Below this size a replay is quick enough that a progress bar would only flicker.
PROGRESS_MIN_BYTES = 8 << 20


def sample_path(name: str = DEFAULT_SAMPLE) -> str:
    """The path of a bundled sample trace (shipped as package data)."""
    return str(resources.files("traces.samples").joinpath(name))


def fan_out(sinks: Sequence[Callable[[Decision], None]]) -> Callable[[Decision], None]:
    """One decision sink feeding several views, in order."""
    if len(sinks) == 1:
        return sinks[0]

    def emit(rec: Decision) -> None:
        for s in sinks:
            s(rec)

    return emit


def chain_hooks(*hook_sets: dict[str, Callable[..., None] | None]) -> dict[str, Callable]:
    """Merge replay hooks (``on_open``, ``on_new_scope``, ``on_event``, ...) of several views:
    hooks of the same name are called one after the other, in the order given."""
    merged: dict[str, list[Callable[..., None]]] = {}
    for hooks in hook_sets:
        for name, fn in hooks.items():
            if fn is not None:
                merged.setdefault(name, []).append(fn)
    out: dict[str, Callable] = {}
    for name, fns in merged.items():
        if len(fns) == 1:
            out[name] = fns[0]
        else:
            def call_all(*args: object, _fns: list[Callable[..., None]] = fns) -> None:
                for fn in _fns:
                    fn(*args)
            out[name] = call_all
    return out


def replay_with_progress(path: str, sinks: Sequence[Callable[[Decision], None]],
                         overrides: dict[str, object], *, strict: bool = False,
                         show_progress: bool | None = None,
                         on_new_scope: Callable[[Scope], None] | None = None,
                         on_event: Callable[[int, object], None] | None = None,
                         on_open: Callable[[object, object], None] | None = None,
                         on_progress: Callable[[int], None] | None = None,
                         on_trace_end: Callable[[], None] | None = None) -> ReplayResult:
    """Replay with a progress bar on standard error for large inputs on a terminal.

    ``on_open(reader, config)`` sees the opened trace (its header) before the first event.
    ``on_progress(bytes_read)`` hears the reader's progress (bytes read), bar or no bar."""
    emit = fan_out(sinks)
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    if not show_progress:
        return replay(path, emit, overrides, strict=strict, on_new_scope=on_new_scope,
                      on_event=on_event, on_open=on_open, progress=on_progress,
                      on_trace_end=on_trace_end)
    progress = Progress(TextColumn("[bold]replaying[/] {task.description}"), BarColumn(),
                        DownloadColumn(), TimeRemainingColumn(), transient=True,
                        redirect_stdout=False, redirect_stderr=False)
    task = None

    def start(reader, config) -> None:  # type: ignore[no-untyped-def]
        nonlocal task
        if on_open is not None:
            on_open(reader, config)
        if reader.size is None or reader.size >= PROGRESS_MIN_BYTES:
            progress.start()
            task = progress.add_task(reader.name, total=reader.size)

    def advance(done: int) -> None:
        if on_progress is not None:
            on_progress(done)
        if task is not None:
            progress.update(task, completed=done)

    try:
        return replay(path, emit, overrides, strict=strict, progress=advance,
                      on_new_scope=on_new_scope, on_open=start, on_event=on_event,
                      on_trace_end=on_trace_end)
    finally:
        progress.stop()
