"""The `memqd` and `memq` commands that installing the memq package puts on
the environment's PATH (memq._commands runs the binaries the package carries)."""

import subprocess
import sys
from pathlib import Path

import pytest

from memq import _commands

SCRIPTS = Path(sys.prefix) / "bin"


@pytest.mark.parametrize("command, usage", [("memqd", "usage: memqd"), ("memq", "usage: memq")])
def test_the_installed_command_runs_the_packaged_binary(command, usage):
    result = subprocess.run([str(SCRIPTS / command), "--help"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0
    assert result.stdout.startswith(usage)


def test_a_missing_binary_is_reported_and_the_command_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(_commands, "BINARIES", tmp_path)
    with pytest.raises(SystemExit, match="memqd: not found in the memq package"):
        _commands.memqd()
