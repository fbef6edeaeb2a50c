"""The `memqd` and `memq` commands of an installed memq package: each runs the
binary of the same name that the package carries in memq/_bin/ (built with
the extension), replacing this Python process, so that signals, exit codes
and stdin/stdout are the binary's own."""

import os
import sys
from pathlib import Path

BINARIES = Path(__file__).resolve().parent / "_bin"


def _run(program):
    path = BINARIES / program
    if not os.access(path, os.X_OK):
        sys.exit(f"{program}: not found in the memq package ({path}); reinstall memq")
    os.execv(path, [program, *sys.argv[1:]])


def memqd():
    """Runs the memq broker (memqd --help)."""
    _run("memqd")


def memq():
    """Runs the memq command line tool: sub, pub, bench (memq --help)."""
    _run("memq")
