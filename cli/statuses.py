"""The exit statuses every command documents in its --help (and the README repeats)."""

EXIT_STATUS_HELP = """\b
Exit statuses:
  0    success
  1    check: an expectation or invariant failed
  2    usage error (bad flag or argument)
  3    invalid trace (malformed JSON, missing or mistyped field, decreasing ts, ...)
  4    truncated trace (the final line or gzip stream was cut off mid-write)
  5    conformance anomaly under --strict
  6    trace cannot be read (missing, a directory, no permission)
  7    invalid expectation file (check)
  8    an output file could not be written
  70   internal error (a bug: please report it; BUDGET_REPLAY_DEBUG=1 shows the traceback)
  130  interrupted (Ctrl-C)
  141  output pipe closed early (e.g. `| head`); nothing is printed
"""
