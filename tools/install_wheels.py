"""Build wheels of the given distribution folders and install them.

Tests run against what users get from ``pip install``: built wheels with
their entry points, not the source tree.  Usage::

    python tools/install_wheels.py WHEEL_DIR FOLDER [FOLDER ...]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    wheel_dir = Path(argv[0])
    # Absolute paths: pip reads a bare "missive-core" as a package name.
    folders = [str(Path(folder).resolve()) for folder in argv[1:]]

    for stale in wheel_dir.glob("*.whl"):
        stale.unlink()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [
            *pip,
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(wheel_dir),
            *folders,
        ],
        check=True,
    )

    wheels = sorted(str(path) for path in wheel_dir.glob("*.whl"))
    # Dependencies first, then the wheels again with --force-reinstall: the
    # version does not change between builds, so pip would keep stale code.
    subprocess.run([*pip, "install", "--quiet", *wheels], check=True)
    subprocess.run(
        [*pip, "install", "--quiet", "--force-reinstall", "--no-deps", *wheels],
        check=True,
    )
    print(f"installed {len(wheels)} wheels: {', '.join(Path(w).name for w in wheels)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
