"""config.py: the environment contract; a pod that breaks it exits 1 naming the variable."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.pools.kubernetes.runtime.conftest import Job


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SFED_NODES", None), ("JOB_COMPLETION_INDEX", "5"), ("SFED_AGENT_PORT", "http")],
)
def test_broken_contract_exits_1_naming_the_variable(
    job: Job, variable: str, value: str | None
) -> None:
    """A missing or invalid contract variable: exit 1 with a message that names it."""
    env = job.env(0)
    if value is None:
        del env[variable]
    else:
        env[variable] = value
    pod = job.start(0, env=env).finish()
    assert pod.rc == 1
    assert variable in pod.stderr and pod.stderr.startswith("sfed: error: ")


def test_unreadable_token_names_the_file_and_the_variables(
    config: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No token in $SFED_DIR: the error names the file, SFED_TOKEN_FILE and SFED_DIR."""
    monkeypatch.delenv("SFED_TOKEN_FILE", raising=False)
    with pytest.raises(config.ConfigError) as caught:
        config.read_token(str(tmp_path))
    assert str(caught.value) == (
        f"cannot read the token {tmp_path}/token (SFED_TOKEN_FILE, SFED_DIR): "
        "No such file or directory"
    )


def test_empty_token_file_is_refused(
    config: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token file with only whitespace is refused (SFED_TOKEN_FILE wins over SFED_DIR)."""
    token = tmp_path / "token"
    token.write_text("\n")
    monkeypatch.setenv("SFED_TOKEN_FILE", str(token))
    with pytest.raises(config.ConfigError, match=r"is empty$"):
        config.read_token("/nonexistent")
