"""Errors about trace files, each with the exit status the command line ends with."""

from __future__ import annotations

# Exit statuses (documented in `budget-replay --help` and the README).
EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INVALID_TRACE = 3
EXIT_TRUNCATED_TRACE = 4
EXIT_STRICT_ANOMALY = 5
EXIT_UNREADABLE = 6
EXIT_INVALID_EXPECTATIONS = 7
EXIT_OUTPUT_FAILED = 8
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class TraceError(Exception):
    """Bad input: one line a person can act on, naming the file, the line and the field."""

    status = EXIT_INVALID_TRACE

    def __init__(self, path: str, line: int | None, message: str, field: str | None = None) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.message = message
        super().__init__(self.one_line())

    def __reduce__(self) -> tuple:
        # Rebuilt from its parts, so that it survives the trip back from a worker process
        # (sweep, compare --jobs): the default pickles only the formatted message.
        return self.__class__, (self.path, self.line, self.message, self.field)

    def one_line(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        what = f"field `{self.field}`: {self.message}" if self.field else self.message
        return f"{where}: {what}"


class TruncatedTrace(TraceError):
    """The final line was cut off mid-write (a killed recorder, a full disk)."""

    status = EXIT_TRUNCATED_TRACE


class UnreadableTrace(TraceError):
    """The file cannot be opened or read at all (missing, a directory, no permission)."""

    status = EXIT_UNREADABLE


class StrictAnomaly(TraceError):
    """A conformance anomaly under ``--strict``."""

    status = EXIT_STRICT_ANOMALY
