"""``python -m cli`` is ``budget-replay``."""

from cli.main import main

main()
