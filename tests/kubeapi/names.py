"""Name and label syntax checks with the apimachinery validation messages."""

from __future__ import annotations

import re

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = _LABEL + r"(\." + _LABEL + r")*"
_DNS1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_ENV_NAME = r"[-._a-zA-Z][-._a-zA-Z0-9]*"
_CONFIG_KEY = r"[-._a-zA-Z0-9]+"


def _regex_msg(what: str, regex: str, examples: tuple[str, ...]) -> str:
    shown = ",  or ".join(f"'{e}'" for e in examples)
    return f"{what} (e.g. {shown}, regex used for validation is '{regex}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def dns1123_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not re.fullmatch(_LABEL, value):
        errs.append(
            _regex_msg(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or"
                " '-', and must start and end with an alphanumeric character",
                _LABEL,
                ("my-name", "123-abc"),
            )
        )
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(_max_len(253))
    if not re.fullmatch(_SUBDOMAIN, value):
        errs.append(
            _regex_msg(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters,"
                " '-' or '.', and must start and end with an alphanumeric character",
                _SUBDOMAIN.replace(r"\.", r"\."),
                ("example.com",),
            )
        )
    return errs


def dns1035_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not re.fullmatch(_DNS1035, value):
        errs.append(
            _regex_msg(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start"
                " with an alphabetic character, and end with an alphanumeric character",
                _DNS1035,
                ("my-name", "abc-123"),
            )
        )
    return errs


def qualified_name(value: str) -> list[str]:
    """A label or annotation key: optional DNS-subdomain prefix, '/', and a name part."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in dns1123_subdomain(prefix)]
    elif len(parts) == 1:
        name = value
    else:
        return [
            _regex_msg(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and"
                " must start and end with an alphanumeric character",
                _QUALIFIED,
                ("MyName", "my.name", "123-abc"),
            )
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    elif not re.fullmatch(_QUALIFIED, name):
        errs.append(
            _regex_msg(
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start"
                " and end with an alphanumeric character",
                _QUALIFIED,
                ("MyName", "my.name", "123-abc"),
            )
        )
    return errs


def label_value(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not re.fullmatch(_LABEL_VALUE, value):
        errs.append(
            _regex_msg(
                "a valid label must be an empty string or consist of alphanumeric characters, '-',"
                " '_' or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE,
                ("MyValue", "my_value", "12345"),
            )
        )
    return errs


def env_var_name(value: str) -> list[str]:
    if re.fullmatch(_ENV_NAME, value):
        return []
    return [
        _regex_msg(
            "a valid environment variable name must consist of alphabetic characters, digits, '_',"
            " '-', or '.', and must not start with a digit",
            _ENV_NAME,
            ("my.env-name", "MY_ENV.NAME", "MyEnvName1"),
        )
    ]


def config_key(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(_max_len(253))
    if not re.fullmatch(_CONFIG_KEY, value):
        errs.append(
            _regex_msg(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                _CONFIG_KEY,
                ("key.name", "KEY_NAME", "key-name"),
            )
        )
    return errs
