"""Tests of sfedd's start-up: configuration errors stop it with the key named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SFEDD = str(Path(sys.executable).parent / "sfedd")


def run_sfedd(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real sfedd executable."""
    return subprocess.run([SFEDD, *args], text=True, capture_output=True, timeout=30)


def test_unknown_key_stops_the_daemon(tmp_path: Path) -> None:
    """An unknown key ends sfedd at start with exit 2 and the key named, in one line."""
    config = tmp_path / "sfed.toml"
    config.write_text('[loop]\ninterval = 2\n[[pools]]\nname = "a"\npartition = "gpu"\n')
    result = run_sfedd("-c", str(config))
    assert result.returncode == 2
    assert result.stderr == f"sfedd: {config}: loop.interval: unknown key\n"


def test_missing_config_file(tmp_path: Path) -> None:
    """A missing file is reported by name."""
    result = run_sfedd("-c", str(tmp_path / "nope.toml"))
    assert result.returncode == 2 and "nope.toml: cannot read: No such file" in result.stderr


def test_check_validates_without_starting(tmp_path: Path) -> None:
    """--check reads and validates the file, then exits 0."""
    config = tmp_path / "sfed.yaml"
    config.write_text("pools:\n  - name: a\n    partition: gpu\n")
    result = run_sfedd("-c", str(config), "--check")
    assert (result.returncode, result.stdout) == (0, f"sfedd: {config}: ok, 1 pool(s)\n")


def test_unknown_fault_point_is_refused(tmp_path: Path) -> None:
    """A misspelt SFED_FAULTS name stops sfedd rather than being silently ignored."""
    config = tmp_path / "sfed.yaml"
    config.write_text("pools: []\n")
    result = subprocess.run(
        [SFEDD, "-c", str(config), "--check"],
        text=True,
        capture_output=True,
        timeout=30,
        env={"SFED_FAULTS": "crash-after-remot-submit", "PATH": "/usr/bin:/bin"},
    )
    assert (
        result.returncode == 2
        and "unknown fault point(s): crash-after-remot-submit" in result.stderr
    )
