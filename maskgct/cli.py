"""Bad input on the command line (every ``python -m maskgct...`` command): one ``error: ...`` line, exit 2."""

from __future__ import annotations

import sys


def report_error(error: BaseException | str) -> int:
    """Print ``error: <message>`` to stderr and return the exit status 2 (``return report_error(err)``)."""
    print(f"error: {error}", file=sys.stderr)
    return 2
