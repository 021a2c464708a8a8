"""Table-driven tests of scheduler.pools.kubernetes.names: object names, labels, hostnames."""

from __future__ import annotations

import re

import pytest

from scheduler.domain import RemoteTag
from scheduler.pools.kubernetes import names

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
TAG = RemoteTag("alpha", 12, 3)
PREFIX = "alpha-12-3"
ROOM = names.MAX_NAME - len(PREFIX) - 1  # what is left for the job name after "<prefix>-"

HOSTILE = [
    pytest.param("", id="empty"),
    pytest.param("UPPER case", id="upper case and a space"),
    pytest.param("a" * 300, id="300 characters"),
    pytest.param("---", id="only hyphens"),
    pytest.param("训练", id="unicode only"),
    pytest.param("训练-run", id="unicode then ascii"),
    pytest.param("x.y_z", id="dots and underscores"),
    pytest.param("a" * (ROOM - 1) + "-b", id="a hyphen at the truncation point"),
    pytest.param("a" * (ROOM - 1) + "..b", id="punctuation at the truncation point"),
    pytest.param("-leading and trailing-", id="leading and trailing hyphens"),
    pytest.param("9lives", id="leading digit"),
    pytest.param("tab\tnew\nline", id="control characters"),
    pytest.param("a/b:c@d", id="path and url characters"),
    pytest.param("İstanbul Kelvin-\u212a", id="unicode that lowercases to ascii"),
]


def job(tag: RemoteTag = TAG, name: str = "train") -> str:
    """object_name of `tag` and job `name`."""
    return names.object_name(tag, name)


# --- object_name -----------------------------------------------------------------------------


@pytest.mark.parametrize("job_name", HOSTILE)
def test_object_name_is_a_dns_1035_label(job_name: str) -> None:
    """object_name is a DNS-1035 label whatever the user called the job."""
    assert DNS_1035.match(job(name=job_name))


@pytest.mark.parametrize("job_name", HOSTILE)
def test_object_name_fits_max_name(job_name: str) -> None:
    """object_name is at most MAX_NAME (57) characters long."""
    assert len(job(name=job_name)) <= names.MAX_NAME == 57


@pytest.mark.parametrize("job_name", HOSTILE)
def test_object_name_starts_with_the_tag(job_name: str) -> None:
    """object_name starts with `<federation>-<job id>-<attempt>`."""
    got = job(name=job_name)
    assert got == PREFIX or got.startswith(f"{PREFIX}-")


@pytest.mark.parametrize("job_name", HOSTILE)
def test_hostnames_of_the_largest_job_are_dns_labels(job_name: str) -> None:
    """`<name>-<index>` stays a DNS label (<= 63) up to index 99999."""
    (host,) = names.hostnames(job(name=job_name), 1)
    largest = host.removesuffix("-0") + "-99999"
    assert len(largest) <= 63 and DNS_1035.match(largest)


@pytest.mark.parametrize("job_name", HOSTILE)
def test_two_attempts_differ(job_name: str) -> None:
    """Two attempts of the same job get different names."""
    first = names.object_name(RemoteTag("alpha", 12, 1), job_name)
    second = names.object_name(RemoteTag("alpha", 12, 2), job_name)
    assert first != second


@pytest.mark.parametrize("job_name", HOSTILE)
def test_object_name_is_stable(job_name: str) -> None:
    """The same tag and job name always give the same name (a retry meets its objects)."""
    assert job(name=job_name) == job(name=job_name)


@pytest.mark.parametrize(
    ("job_name", "expected"),
    [
        pytest.param("train", "alpha-12-3-train", id="plain"),
        pytest.param("", PREFIX, id="empty: the prefix alone"),
        pytest.param("UPPER case", "alpha-12-3-upper-case", id="lowered, space to hyphen"),
        pytest.param("x.y_z", "alpha-12-3-x-y-z", id="dots and underscores to hyphens"),
        pytest.param("a  ..b", "alpha-12-3-a-b", id="a run of bad characters is one hyphen"),
        pytest.param("---", PREFIX, id="only hyphens: the prefix alone"),
        pytest.param("训练", PREFIX, id="unicode only: the prefix alone"),
        pytest.param("训练-run", "alpha-12-3-run", id="unicode dropped"),
        pytest.param("-x-", "alpha-12-3-x", id="hyphens stripped"),
        pytest.param("a" * 300, f"{PREFIX}-{'a' * ROOM}", id="truncated to MAX_NAME"),
        pytest.param(
            "a" * (ROOM - 1) + "-bcd",
            f"{PREFIX}-{'a' * (ROOM - 1)}",
            id="no trailing hyphen after truncation",
        ),
    ],
)
def test_object_name(job_name: str, expected: str) -> None:
    """object_name slugs the job name into a DNS label after the tag's prefix."""
    assert job(name=job_name) == expected


@pytest.mark.parametrize(
    "federation",
    [
        pytest.param("f" * (names.MAX_NAME - len("-12-3") - 1), id="room for the hyphen only"),
        pytest.param("f" * (names.MAX_NAME - len("-12-3")), id="prefix exactly MAX_NAME"),
    ],
)
def test_long_prefix_leaves_out_the_job_name(federation: str) -> None:
    """When the prefix leaves no room, the name is the prefix alone."""
    tag = RemoteTag(federation, 12, 3)
    assert names.object_name(tag, "train") == f"{federation}-12-3"


def test_prefix_longer_than_max_name_is_refused() -> None:
    """A prefix longer than MAX_NAME raises ValueError instead of breaking the DNS label."""
    with pytest.raises(ValueError, match="longer than 57"):
        names.object_name(RemoteTag("f" * 60, 12, 3), "train")


# --- tags and labels -------------------------------------------------------------------------

TAGS = [
    pytest.param(RemoteTag("alpha", 12, 3), id="simple"),
    pytest.param(RemoteTag("sfed", 1, 1), id="default federation"),
    pytest.param(RemoteTag("prod-eu-1", 987654321, 42), id="hyphenated, large id"),
]


def test_tag_labels() -> None:
    """tag_labels gives the federation, job id and attempt as string label values."""
    assert names.tag_labels(TAG) == {
        "sfed.io/federation": "alpha",
        "sfed.io/job-id": "12",
        "sfed.io/attempt": "3",
    }


def test_tag_selector() -> None:
    """tag_selector is the equality selector of exactly the tag's labels."""
    assert names.tag_selector(TAG) == "sfed.io/federation=alpha,sfed.io/job-id=12,sfed.io/attempt=3"


@pytest.mark.parametrize("tag", TAGS)
def test_tag_selector_selects_the_tag_labels(tag: RemoteTag) -> None:
    """Parsing tag_selector back gives tag_labels."""
    selector = names.tag_selector(tag)
    assert dict(term.split("=", 1) for term in selector.split(",")) == names.tag_labels(tag)


@pytest.mark.parametrize("tag", TAGS)
def test_tag_labels_round_trip(tag: RemoteTag) -> None:
    """The tag can be rebuilt from its labels."""
    labels = names.tag_labels(tag)
    rebuilt = RemoteTag(
        labels[names.FEDERATION_LABEL],
        int(labels[names.JOB_ID_LABEL]),
        int(labels[names.ATTEMPT_LABEL]),
    )
    assert rebuilt == tag


@pytest.mark.parametrize("tag", TAGS)
def test_tag_of_round_trips_the_annotation(tag: RemoteTag) -> None:
    """tag_of reads back the tag rendered into the sfed.io/tag annotation."""
    metadata = {
        "name": "x",
        "labels": names.tag_labels(tag),
        "annotations": {names.TAG_ANNOTATION: tag.render(), names.JOB_NAME_ANNOTATION: "train"},
    }
    assert names.tag_of(metadata) == tag


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({"name": "x"}, id="no annotations"),
        pytest.param({"name": "x", "annotations": None}, id="annotations null"),
        pytest.param({"name": "x", "annotations": {}}, id="no tag annotation"),
        pytest.param(
            {"name": "x", "annotations": {names.TAG_ANNOTATION: "not a tag"}}, id="not a tag"
        ),
        pytest.param(
            {"name": "x", "annotations": {names.TAG_ANNOTATION: "sfed/alpha/x/1"}},
            id="non-numeric job id",
        ),
        pytest.param(
            {"name": "x", "labels": names.tag_labels(TAG)}, id="labels only, no annotation"
        ),
    ],
)
def test_tag_of_without_a_tag_is_none(metadata: dict[str, object]) -> None:
    """tag_of is None when the annotations carry no readable tag."""
    assert names.tag_of(metadata) is None


# --- hostnames and nodelist ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        pytest.param(1, ["alpha-12-3-train-0"], id="1 node"),
        pytest.param(
            3, ["alpha-12-3-train-0", "alpha-12-3-train-1", "alpha-12-3-train-2"], id="3 nodes"
        ),
    ],
)
def test_hostnames(nodes: int, expected: list[str]) -> None:
    """hostnames are `<name>-<index>` in index order."""
    assert names.hostnames("alpha-12-3-train", nodes) == expected


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        pytest.param(1, "alpha-12-3-train-0", id="1 node"),
        pytest.param(3, "alpha-12-3-train-[0-2]", id="3 nodes"),
    ],
)
def test_nodelist(nodes: int, expected: str) -> None:
    """nodelist is Slurm's hostlist form of the hostnames."""
    assert names.nodelist("alpha-12-3-train", nodes) == expected
