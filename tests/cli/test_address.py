"""Where `sfed` finds sfedd: --address, $SFED_ADDRESS, client configs, the default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scheduler.cli import client
from scheduler.cli.client import (
    DEFAULT_ADDRESS,
    ClientConfigError,
    Target,
    TLSFiles,
    resolve_address,
    user_client_conf,
)
from scheduler.cli.main import main


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of the test's own, no address variables, /etc/sfed/client.toml moved under tmp."""
    for name in ("SFED_ADDRESS", "SFED_CLIENT_CONF", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(client, "SYSTEM_CLIENT_CONF", tmp_path / "etc" / "client.toml")
    return home


def write(path: Path, text: str) -> Path:
    """Write a client config, making its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def conf(path: Path, address: str) -> Path:
    """Write a client config holding `address`."""
    return write(path, f'address = "{address}"\n')


def user_file(home: Path) -> Path:
    """The per-user client config under `home`."""
    return home / ".config" / "sfed" / "client.toml"


def test_default_without_flag_variable_or_file() -> None:
    """With nothing set and no file, the address is the built-in default."""
    assert resolve_address(None) == Target(DEFAULT_ADDRESS, "default")


def test_flag_wins_over_everything(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--address beats $SFED_ADDRESS and every client config."""
    monkeypatch.setenv("SFED_ADDRESS", "unix:/env.sock")
    conf(user_file(home), "unix:/user.sock")
    assert resolve_address("unix:/flag.sock") == Target("unix:/flag.sock", "--address")


def test_variable_wins_over_client_configs(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$SFED_ADDRESS beats $SFED_CLIENT_CONF and the per-user file."""
    monkeypatch.setenv("SFED_ADDRESS", "localhost:50051")
    monkeypatch.setenv("SFED_CLIENT_CONF", str(conf(home / "named.toml", "unix:/named.sock")))
    conf(user_file(home), "unix:/user.sock")
    assert resolve_address(None) == Target("localhost:50051", "$SFED_ADDRESS")


def test_empty_variable_counts_as_unset(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty $SFED_ADDRESS falls through to the per-user file."""
    monkeypatch.setenv("SFED_ADDRESS", "")
    path = conf(user_file(home), "unix:/user.sock")
    assert resolve_address(None) == Target("unix:/user.sock", str(path))


def test_named_config_wins_over_user_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file $SFED_CLIENT_CONF names beats the per-user file."""
    named = conf(home / "named.toml", "unix:/named.sock")
    monkeypatch.setenv("SFED_CLIENT_CONF", str(named))
    conf(user_file(home), "unix:/user.sock")
    assert resolve_address(None) == Target("unix:/named.sock", str(named))


def test_named_config_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$SFED_CLIENT_CONF naming no file is an error naming it, not a fall-through."""
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("SFED_CLIENT_CONF", str(missing))
    with pytest.raises(ClientConfigError, match=f"SFED_CLIENT_CONF: {missing} does not exist"):
        resolve_address(None)


def test_user_file_under_home(home: Path) -> None:
    """~/.config/sfed/client.toml gives the address when nothing else is set."""
    path = conf(user_file(home), "unix:/user.sock")
    assert resolve_address(None) == Target("unix:/user.sock", str(path))


def test_xdg_config_home_moves_the_user_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With $XDG_CONFIG_HOME set, the per-user file is $XDG_CONFIG_HOME/sfed/client.toml."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    path = conf(tmp_path / "xdg" / "sfed" / "client.toml", "unix:/xdg.sock")
    assert user_client_conf() == path
    assert resolve_address(None) == Target("unix:/xdg.sock", str(path))


def test_user_file_wins_over_system_file(home: Path) -> None:
    """The per-user file beats /etc/sfed/client.toml."""
    conf(client.SYSTEM_CLIENT_CONF, "unix:/system.sock")
    path = conf(user_file(home), "unix:/user.sock")
    assert resolve_address(None) == Target("unix:/user.sock", str(path))


def test_system_file_without_user_file() -> None:
    """/etc/sfed/client.toml gives the address when there is no per-user file."""
    path = conf(client.SYSTEM_CLIENT_CONF, "sfed.example:50051")
    assert resolve_address(None) == Target("sfed.example:50051", str(path))


def test_invalid_toml_names_the_file_and_line(home: Path) -> None:
    """A file that is not TOML is refused with its path and the line of the error."""
    path = write(user_file(home), 'address = "unix:/a.sock"\naddress "unix:/b.sock"\n')
    with pytest.raises(ClientConfigError) as err:
        resolve_address(None)
    assert str(err.value).startswith(f"{path}: not valid TOML: ")
    assert "line 2" in str(err.value) and "\n" not in str(err.value)


def test_missing_address_names_the_key(home: Path) -> None:
    """A client config without `address` is refused naming the file and the key."""
    path = write(user_file(home), "# nothing yet\n")
    with pytest.raises(ClientConfigError, match=f"^{path}: address: missing"):
        resolve_address(None)


def test_address_that_is_not_a_string_names_the_key(home: Path) -> None:
    """address = 50051 is refused naming the file and the key."""
    path = write(user_file(home), "address = 50051\n")
    with pytest.raises(ClientConfigError, match=f"^{path}: address: must be a string.*got 50051$"):
        resolve_address(None)


def test_relative_socket_path_is_refused(home: Path) -> None:
    """A unix socket path relative to wherever sfed runs is refused naming the key."""
    path = conf(user_file(home), "unix:sfed.sock")
    with pytest.raises(ClientConfigError, match=f"^{path}: address: the socket path must be"):
        resolve_address(None)


def test_unknown_key_is_named(home: Path) -> None:
    """A misspelt key is refused by name rather than ignored."""
    path = write(user_file(home), 'adress = "unix:/a.sock"\n')
    with pytest.raises(ClientConfigError, match=f"^{path}: adress: unknown key"):
        resolve_address(None)


def test_flag_skips_a_malformed_file(home: Path) -> None:
    """With --address, a broken client config is not even read."""
    write(user_file(home), "address = \n")
    assert resolve_address("unix:/flag.sock").address == "unix:/flag.sock"


def test_cli_reports_a_malformed_file_in_one_line(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sfed pools` with a malformed per-user file exits 2 with one line naming file and key."""
    path = write(user_file(home), "address = true\n")
    assert main(["pools"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sfed: {path}: address: ") and err.count("\n") == 1


def test_unreachable_address_says_where_it_came_from(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """When sfedd does not answer, the error names the client config the address came from."""
    path = conf(user_file(home), f"unix:{tmp_path}/none.sock")
    assert main(["--timeout", "2", "pools"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"sfed: cannot reach sfedd at unix:{tmp_path}/none.sock (from {path}): ")


def test_help_lists_the_order(capsys: pytest.CaptureFixture[str]) -> None:
    """`sfed --help` lists flag, variable, client configs and default in resolution order."""
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    order = [
        "--address ADDRESS\n",
        "$SFED_ADDRESS\n",
        "$SFED_CLIENT_CONF",
        "~/.config/sfed/client.toml",
        "/etc/sfed/client.toml",
        DEFAULT_ADDRESS,
    ]
    tail = out[out.index("where sfed finds sfedd") :]
    positions = [tail.index(item) for item in order]
    assert positions == sorted(positions), tail


def test_client_config_names_tls_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ca_file, cert_file and key_file in a client config make a TLS target."""
    path = tmp_path / "client.toml"
    path.write_text(
        'address = "sfed.example:6817"\nca_file = "/etc/sfed/ca.pem"\n'
        'cert_file = "/etc/sfed/me.pem"\nkey_file = "/etc/sfed/me.key"\n'
    )
    monkeypatch.setenv("SFED_CLIENT_CONF", str(path))
    monkeypatch.delenv("SFED_ADDRESS", raising=False)
    monkeypatch.delenv("SFED_CA_FILE", raising=False)
    assert resolve_address(None).tls == TLSFiles(
        "/etc/sfed/ca.pem", "/etc/sfed/me.pem", "/etc/sfed/me.key"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('ca_file = "ca.pem"', "ca_file: must be an absolute path, got 'ca.pem'"),
        ('ca_file = "/ca.pem"\ncert_file = "/c.pem"', "cert_file and key_file go together"),
        ('cert_file = "/c.pem"\nkey_file = "/k.pem"', "cert_file needs ca_file"),
    ],
)
def test_bad_tls_files_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    """A TLS setting that cannot work is refused, naming the file and the key."""
    path = tmp_path / "client.toml"
    path.write_text(f'address = "h:1"\n{body}\n')
    monkeypatch.setenv("SFED_CLIENT_CONF", str(path))
    monkeypatch.delenv("SFED_ADDRESS", raising=False)
    with pytest.raises(ClientConfigError, match=re.escape(f"{path}: {message}")):
        resolve_address(None)


def test_ca_file_flag_wins_over_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--ca-file (or $SFED_CA_FILE) turns TLS on for an address that names none."""
    monkeypatch.delenv("SFED_CA_FILE", raising=False)
    target = resolve_address("h:1", ca_file="/ca.pem")
    assert (target.address, target.tls) == ("h:1", TLSFiles("/ca.pem"))
    monkeypatch.setenv("SFED_CA_FILE", "/env-ca.pem")
    assert resolve_address("h:1").tls == TLSFiles("/env-ca.pem")
