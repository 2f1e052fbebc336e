"""Atomic output files: written to a temporary file beside the target, renamed into place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO

from traces.errors import EXIT_OUTPUT_FAILED


class OutputFailed(Exception):
    """An output file could not be written (no such folder, no space, no permission)."""

    status = EXIT_OUTPUT_FAILED

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(self.one_line())

    def __reduce__(self) -> tuple:
        return self.__class__, (self.path, self.reason)

    def one_line(self) -> str:
        return f"cannot write {self.path}: {self.reason} (any previous file is left as it was)"


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Yield a file whose content replaces ``path`` only if the block finishes.

    On any failure, Ctrl-C included, the previous file is left untouched and the temporary file
    is removed.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                   dir=directory)
    except OSError as e:
        raise OutputFailed(path, e.strerror or str(e)) from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        # Reading errors arrive as TraceError, so an OSError here is about this output.
        if isinstance(e, OSError) and not isinstance(e, BrokenPipeError):
            raise OutputFailed(path, e.strerror or str(e)) from None
        raise
