"""``python -m missive``: the same as the ``missive`` command."""

from __future__ import annotations

import sys

from missive.cli import main

if __name__ == "__main__":
    sys.exit(main())
