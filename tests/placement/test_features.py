"""Tests of scheduler.placement.features: -C constraints and which nodes a request accepts."""

from __future__ import annotations

import re

import pytest

from scheduler.placement.features import Constraint, NodeMatch, match_of, parse_constraint


@pytest.mark.parametrize(
    ("text", "want"),
    [
        pytest.param("a100", Constraint("a100", ("a100",)), id="one feature"),
        pytest.param("a100&ib", Constraint("a100&ib", ("a100", "ib")), id="all of two"),
        pytest.param(
            "a100|h100|v100",
            Constraint("a100|h100|v100", ("a100", "h100", "v100"), any_of=True),
            id="any of three",
        ),
        pytest.param(
            "rack:1.a+b_c-d", Constraint("rack:1.a+b_c-d", ("rack:1.a+b_c-d",)), id="odd characters"
        ),
    ],
)
def test_supported_forms_parse(text: str, want: Constraint) -> None:
    """One feature, a&b and a|b parse into the names and the operator."""
    assert parse_constraint(text) == want


@pytest.mark.parametrize(
    ("text", "form"),
    [
        pytest.param("[a100|h100]", "matching OR in brackets", id="brackets"),
        pytest.param("a100*2", "feature counts (a*2)", id="count"),
        pytest.param("[a100*2&ib]", "matching OR in brackets", id="brackets with a count"),
        pytest.param("(a|b)&c", "parentheses", id="parentheses"),
        pytest.param("!a100", "negation", id="negation"),
        pytest.param("a&b|c", "& mixed with |", id="mixed operators"),
        pytest.param("a,b", "commas", id="comma"),
        pytest.param("a&&b", "an empty feature name", id="empty name"),
        pytest.param("a|", "an empty feature name", id="trailing operator"),
        pytest.param("", "an empty feature name", id="empty"),
        pytest.param("a b", "'a b' is not a feature name", id="space"),
    ],
)
def test_other_forms_refused_by_name(text: str, form: str) -> None:
    """Slurm's other forms are refused with a message naming the form."""
    with pytest.raises(ValueError, match=f"^{re.escape(form)}"):
        parse_constraint(text)


@pytest.mark.parametrize(
    ("match", "gpu_type", "features", "accepted"),
    [
        pytest.param(NodeMatch("a100"), "a100", (), True, id="type equal"),
        pytest.param(NodeMatch("a100"), "h100", (), False, id="type differs"),
        pytest.param(NodeMatch("a100"), "", (), False, id="untyped node"),
        pytest.param(
            NodeMatch(None, parse_constraint("a&b")), "", ("a", "b", "c"), True, id="all there"
        ),
        pytest.param(NodeMatch(None, parse_constraint("a&b")), "", ("a",), False, id="one missing"),
        pytest.param(NodeMatch(None, parse_constraint("a|b")), "", ("b",), True, id="any there"),
        pytest.param(NodeMatch(None, parse_constraint("a|b")), "", ("c",), False, id="none there"),
        pytest.param(
            NodeMatch("h100", parse_constraint("ib")), "h100", ("ib",), True, id="type and feature"
        ),
    ],
)
def test_node_match_accepts(
    match: NodeMatch, gpu_type: str, features: tuple[str, ...], accepted: bool
) -> None:
    """A node is accepted when its GPU type equals the asked one and its features satisfy."""
    assert match.accepts(gpu_type, features) is accepted


def test_nothing_asked_is_no_match() -> None:
    """A request with neither GPU type nor constraint has no NodeMatch (every node counts)."""
    assert match_of(None, None) is None


def test_unparsable_constraint_accepts_no_node() -> None:
    """A constraint that skipped validation matches no node rather than raising."""
    match = match_of(None, "[a*2]")
    assert match is not None and not match.accepts("", ("a",))


def test_words_name_type_then_features() -> None:
    """Reasons name the GPU type, then the features as the user wrote them."""
    assert match_of("h100", "a|b") == NodeMatch("h100", parse_constraint("a|b"))
    assert NodeMatch("h100", parse_constraint("a|b")).words() == ("GPU type h100", "features a|b")
