"""Tests of scheduler.config: loading and validating sfedd's configuration file."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.config import ConfigError, KubernetesPoolConfig, load_config, parse_config


def minimal(**pool: object) -> dict[str, object]:
    """A valid configuration with one pool, overridable per key."""
    return {"pools": [{"name": "alpha", "partition": "gpu", **pool}]}


def test_minimal_config_gets_defaults() -> None:
    """A config with one pool fills every other key with its default."""
    config = parse_config(minimal())
    assert config.store.url.startswith("sqlite:///")
    assert config.pools[0].transport == "local"
    assert config.federation.virtual_partition == "fed"


def test_unknown_key_is_named() -> None:
    """An unknown key is rejected with its full path."""
    with pytest.raises(ConfigError, match=r"pools\.0\.prtition: unknown key"):
        parse_config(minimal(prtition="gpu"))


def test_bad_value_is_named() -> None:
    """A value of the wrong kind is rejected with its path."""
    with pytest.raises(ConfigError, match=r"pools\.0\.transport: Input should be 'local' or 'ssh'"):
        parse_config(minimal(transport="telnet"))


def test_duplicate_pool_names_are_rejected() -> None:
    """Two pools with one name are refused."""
    data = {"pools": [{"name": "a", "partition": "p"}, {"name": "a", "partition": "q"}]}
    with pytest.raises(ConfigError, match="pool name 'a' is used twice"):
        parse_config(data)


def test_ssh_transport_needs_ssh_table() -> None:
    """transport = ssh without connection details is refused."""
    with pytest.raises(ConfigError, match="transport ssh needs an \\[ssh\\] table"):
        parse_config(minimal(transport="ssh"))


def test_ssh_key_file_must_exist(tmp_path: Path) -> None:
    """A missing key file is named at start, not at the first connection."""
    ssh = {
        "host": "h",
        "user": "u",
        "key": str(tmp_path / "nokey"),
        "known_hosts": str(tmp_path / "kh"),
    }
    with pytest.raises(ConfigError, match=r"pools\.0\.ssh\.key: no such file"):
        parse_config(minimal(transport="ssh", ssh=ssh))


def test_path_map_must_be_absolute() -> None:
    """Relative path-map entries are refused."""
    with pytest.raises(ConfigError, match=r"pools\.0\.path_map"):
        parse_config(minimal(path_map={"shared": "/mnt/shared"}))


def test_store_url_scheme_is_checked() -> None:
    """Only SQLite and Postgres (psycopg) URLs are accepted."""
    with pytest.raises(ConfigError, match=r"store\.url: must start with"):
        parse_config({"store": {"url": "mysql://x"}})


def test_tcp_address_is_checked() -> None:
    """A TCP listen address needs a valid port."""
    with pytest.raises(ConfigError, match=r"server\.tcp"):
        parse_config({"server": {"tcp": "localhost:99999"}})


def test_loads_toml_and_yaml(tmp_path: Path) -> None:
    """The same settings load from TOML and from YAML."""
    toml = tmp_path / "sfed.toml"
    toml.write_text('[[pools]]\nname = "beta"\npartition = "gpu"\nweight = 3\n')
    yml = tmp_path / "sfed.yaml"
    yml.write_text("pools:\n  - name: beta\n    partition: gpu\n    weight: 3\n")
    assert load_config(toml) == load_config(yml)


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    """A file that does not parse is reported with its name."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[pools\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(bad)


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    """Only .toml, .yaml and .yml are read."""
    other = tmp_path / "sfed.ini"
    other.write_text("")
    with pytest.raises(ConfigError, match="unknown format"):
        load_config(other)


def kube(**pool: object) -> dict[str, object]:
    """A valid configuration with one Kubernetes pool, overridable per key."""
    return {"pools": [{"name": "gke", "kind": "kubernetes", "image": "pytorch:2", **pool}]}


def test_kubernetes_pool_gets_defaults() -> None:
    """A Kubernetes pool needs a name and an image; namespace default, in-cluster config."""
    [pool] = parse_config(kube()).pools
    assert (pool.kind, pool.transport_label(), pool.served_partition()) == (
        "kubernetes",
        "api",
        None,
    )
    assert pool.namespace == "default" and pool.kubeconfig is None  # type: ignore[union-attr]


def test_kubernetes_pool_reads_gpu_types_and_features_from_labels() -> None:
    """gpu_type_label, its map of values to type names, and feature_labels are read."""
    [pool] = parse_config(
        kube(
            gpu_type_label="nvidia.com/gpu.product",
            gpu_types={"NVIDIA-A100-SXM4-80GB": "a100"},
            feature_labels=["sfed.io/interconnect"],
        )
    ).pools
    assert isinstance(pool, KubernetesPoolConfig)
    assert (pool.gpu_type_label, pool.gpu_types, pool.feature_labels) == (
        "nvidia.com/gpu.product",
        {"NVIDIA-A100-SXM4-80GB": "a100"},
        ("sfed.io/interconnect",),
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"kind": "nomad"}, r"pools\.0: kind must be 'slurm' or 'kubernetes'"),
        ({"image": None}, r"pools\.0\.image: "),
        ({"image": "a b"}, r"pools\.0\.image: must be a container image reference"),
        ({"namespace": "ML_Jobs"}, r"pools\.0\.namespace: 'ML_Jobs' is not a DNS label"),
        ({"node_selector": {"pool": "a b"}}, r"pools\.0\.node_selector: .*the value must be"),
        ({"kubeconfig": "/nonexistent/kubeconfig"}, r"pools\.0\.kubeconfig: no such file"),
        ({"path_map": {"/x": {}}}, r"pools\.0\.path_map\./x: give exactly one of pvc"),
        ({"path_map": {"/x": {"pvc": "a", "host_path": "/b"}}}, r"give exactly one of"),
        ({"path_map": {"/sfed": {"pvc": "a"}}}, r"must be an absolute path other than / and /sfed"),
        ({"path_map": {"rel": {"pvc": "a"}}}, r"must be an absolute path"),
        ({"path_map": {"/x": {"nfs_server": "h"}}}, r"nfs_server and nfs_path go together"),
        ({"tolerations": [{"operator": "Exists", "value": "v"}]}, r"Exists takes no value"),
        ({"tolerations": [{"effect": "Sometimes", "key": "k"}]}, r"tolerations\.0\.effect"),
        ({"gpu_resource": "gpu"}, r"must be an extended resource name"),
        ({"partition": "gpu"}, r"pools\.0\.partition: unknown key"),
        ({"ttl_after_finished_s": 5}, r"ttl_after_finished_s: Input should be greater"),
        ({"gpu_type_label": "a b"}, r"pools\.0\.gpu_type_label: label key 'a b'"),
        (
            {"gpu_type_label": "g", "gpu_types": {"A100 80GB": "a100"}},
            r"pools\.0\.gpu_types: 'A100 80GB': a label value is at most 63",
        ),
        (
            {"gpu_type_label": "g", "gpu_types": {"A100": "a 100"}},
            r"pools\.0\.gpu_types: A100 = 'a 100': a GPU type is at most 64",
        ),
        ({"gpu_types": {"A100": "a100"}}, r"pools\.0: gpu_types maps values of gpu_type_label"),
        ({"feature_labels": ["ok", "not ok"]}, r"pools\.0\.feature_labels: label key 'not ok'"),
    ],
)
def test_bad_kubernetes_pool_settings_are_named(override: dict[str, object], message: str) -> None:
    """Each bad Kubernetes pool setting is refused with its key and the reason."""
    data = kube(**override)
    if override.get("image", "") is None:
        del data["pools"][0]["image"]  # type: ignore[index]
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_tcp_needs_tls() -> None:
    """A TCP listener without TLS is refused: credentials must not cross in the clear."""
    with pytest.raises(ConfigError, match=r"server: .*tcp needs a \[server.tls\] table"):
        parse_config({"server": {"tcp": "0.0.0.0:6817"}})


def test_tcp_plaintext_only_on_loopback() -> None:
    """tcp_plaintext is refused on a non-loopback address and accepted on 127.0.0.1."""
    with pytest.raises(ConfigError, match="tcp_plaintext is allowed on a loopback address only"):
        parse_config({"server": {"tcp": "10.0.0.5:6817", "tcp_plaintext": True}})
    config = parse_config({"server": {"tcp": "127.0.0.1:6817", "tcp_plaintext": True}})
    assert config.server.tcp_plaintext


def test_tls_files_must_exist(tmp_path: Path) -> None:
    """server.tls names files that exist, each key named."""
    with pytest.raises(
        ConfigError,
        match=r"server\.tls\.cert: no such file: /nope",
    ):
        parse_config({"server": {"tcp": "h:1", "tls": {"cert": "/nope", "key": "/nope"}}})


def test_client_users_need_a_client_ca(tmp_path: Path) -> None:
    """client_users without client_ca is refused."""
    pem = tmp_path / "x.pem"
    pem.write_text("x")
    tls = {"cert": str(pem), "key": str(pem), "client_users": {"door": "slurm"}}
    with pytest.raises(ConfigError, match="client_users needs client_ca"):
        parse_config({"server": {"tcp": "h:1", "tls": tls}})


def test_private_data_takes_only_jobs() -> None:
    """private_data accepts "jobs" (as Slurm's PrivateData) and refuses unknown words."""
    assert parse_config({"server": {"private_data": ["jobs"]}}).server.private_data == ("jobs",)
    with pytest.raises(ConfigError, match=r"server.private_data.0"):
        parse_config({"server": {"private_data": ["accounts"]}})


def test_environment_drop_defaults_per_kind() -> None:
    """Slurm and Kubernetes pools each start from their documented drop list."""
    config = parse_config(
        {
            "pools": [
                {"name": "a", "partition": "p"},
                {"name": "k", "kind": "kubernetes", "image": "i"},
            ]
        }
    )
    slurm, kube = config.pools
    assert "SLURM_*" in slurm.environment_drop and "PATH" not in slurm.environment_drop
    assert {"SLURM_*", "PATH", "HOME"} <= set(kube.environment_drop)


def test_environment_drop_takes_name_patterns() -> None:
    """environment_drop entries are variable-name patterns, each bad one named."""
    assert parse_config(minimal(environment_drop=["HOME"])).pools[0].environment_drop == ("HOME",)
    with pytest.raises(ConfigError, match=r"pools\.0\.environment_drop: 'a b' is not a variable"):
        parse_config(minimal(environment_drop=["a b"]))
