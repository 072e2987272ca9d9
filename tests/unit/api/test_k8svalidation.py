"""Kubernetes' own name, key and value rules (issue 9 item 10).

The first corpus holds the cases of k8s.io/apimachinery's ``validation_test.go`` for each
``Is*`` function, so the port is held to Go's behaviour, not to itself.
"""

from __future__ import annotations

import pytest

from mirage_operator.api import k8svalidation as kv


def _cases(valid: list[str], invalid: list[str]) -> list[tuple[str, bool]]:
    return [(v, True) for v in valid] + [(v, False) for v in invalid]


LOWER = ["a", "ab", "abc", "a1", "a-1", "a--1--2--b"]
DIGIT_FIRST = ["0", "01", "012", "1a", "1-a", "1--a--b--2"]
NOT_A_LABEL = [
    "", "A", "ABC", "aBc", "A1", "A-1", "1-A", "-", "a-", "-a", "1-", "-1", "_", "a_", "_a",
    "a_b", "1_", "_1", "1_2", " ", "a ", " a", "a b", "1 ", " 1", "1 2", "a@b", "a;b", "a:b",
]  # fmt: skip
DOTTED = ["a.a", "ab.a", "a-1.a", "a.1", "0.a", "1-a.a", "a.b.c.d.e", "1.2.3.4.5"]
BAD_DOTS = [".", "a.", ".a", "a..b", "1.", ".1", "A.a", "ab.A", "0.A", "a.B.c.d.e"]


CORPUS: dict[str, tuple[list[str], list[str]]] = {
    "dns1123-label": (
        [*LOWER, *DIGIT_FIRST, "a" * 63],
        [*NOT_A_LABEL, *DOTTED, *BAD_DOTS, "a" * 64, "abc\n"],
    ),
    "dns1123-subdomain": (
        [*LOWER, *DIGIT_FIRST, *DOTTED, "a" * 253, ("a" * 63 + ".") * 3 + "a" * 61],
        [*NOT_A_LABEL, *BAD_DOTS, "a" * 254, "example.com\n"],
    ),
    "dns1035-label": (
        [*LOWER, "a" * 63],
        [*DIGIT_FIRST, *NOT_A_LABEL, *DOTTED, *BAD_DOTS, "a" * 64, "hello\n"],
    ),
    "qualified-name": (
        [
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "1234",
            "simple/simple",
            "now-with-dashes/simple",
            "now-with-dashes/now-with-dashes",
            "now.with.dots/simple",
            "now-with.dashes-and.dots/simple",
            "1-num.2-num/3-num",
            "1234/5678",
            "1.2.3.4/5678",
            "Uppercase_Is_OK_123",
            "example.com/Uppercase_Is_OK_123",
            "requests.storage-foo",
            "a" * 63,
            "a" * 253 + "/" + "b" * 63,
        ],
        [
            "nospecialchars%^=@",
            "cantendwithadash-",
            "-cantstartwithadash-",
            "only/one/slash",
            "Example.com/abc",
            "example_com/abc",
            "example.com/",
            "/simple",
            "a" * 64,
            "a" * 254 + "/abc",
            "bad key!",
            "-bad",
            "key\n",
            "a/b\n",
        ],
    ),
    "label-value": (
        [
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "end-with-num-1",
            "1234",
            "a" * 63,
            "",
            "Uppercase_Is_OK_123",
        ],
        [
            "nospecialchars%^=@",
            "Tama-nui-te-rā.is.Māori.sun",
            "\\backslashes\\are\\bad",
            "-starts-with-dash",
            "ends-with-dash-",
            ".starts.with.dot",
            "ends.with.dot.",
            "a" * 64,
            "has space",
            "value\n",
        ],
    ),
    "config-map-key": (
        [
            "a",
            "ab",
            "abc",
            "a1",
            "a-1",
            "a--1--2--b",
            "0",
            "01",
            "012",
            "1a",
            "1-a",
            "1--a--b--2",
            "a.a",
            "ab.a",
            ".a",
            "_a",
            "a_b",
            "A",
            "AB",
            ".a",
            "a" * 253,
            "tls.crt",
            ".dockerconfigjson",
        ],
        ["", ".", "..", "..a", "a/b", "a b", "a\n", "a" * 254, "bad key!", "é"],
    ),
    "env-var-name": (
        [
            "A",
            "AB",
            "AbC",
            "A1",
            "a-1",
            "a.1",
            "A_1",
            "_a",
            "my.env-name",
            "MY_ENV.NAME",
            "MyEnvName1",
            ".a",
        ],
        ["1", "123", "1A", "", ".", "..", "..a", "A B", "A=B", "A\n", "é"],
    ),
    "port-name": (
        [
            "telnet",
            "re-mail-ck",
            "pop3",
            "a",
            "a-1",
            "1-a",
            "a-1-b-2-c",
            "1-a-2-b-3",
            "abcdefghijklmno",
        ],
        [
            "",
            "abcdefghijklmnop",
            "TELNET",
            "re-mail-ck!",
            "1234",
            "a--b",
            "-a",
            "a-",
            "a_b",
            "http\n",
        ],
    ),
}
"""Per rule of ``k8svalidation.NAME_RULES``: (values Go accepts, values Go refuses)."""


@pytest.mark.parametrize(
    ("rule", "value", "ok"),
    [(rule, value, ok) for rule, (good, bad) in CORPUS.items() for value, ok in _cases(good, bad)],
)
def test_name_rule(rule: str, value: str, ok: bool) -> None:
    assert (kv.NAME_RULES[rule](value) == []) is ok


def test_the_corpus_covers_every_rule() -> None:
    assert set(CORPUS) == set(kv.NAME_RULES)


@pytest.mark.parametrize(
    ("max_surge", "max_unavailable", "ok"),
    [
        ("25%", 0, True),
        (0, 1, True),
        (1, 0, True),
        ("0%", "1%", True),
        (0, "100%", True),
        (None, 0, True),  # unset maxSurge is not 0
        (0, None, True),
        (-5, 0, False),
        (1, -1, False),
        (0, 0, False),
        ("0%", 0, False),
        ("00%", "0%", False),
        (1, "150%", False),
        (1, "101%", False),
        ("5", 1, False),  # a string must be a percentage
        ("5%\n", 1, False),
        ("x%", 1, False),
        (1, True, False),
    ],
)
def test_rolling_update(max_surge: object, max_unavailable: object, ok: bool) -> None:
    problems = kv.rolling_update_problems(
        max_surge,  # type: ignore[arg-type]
        max_unavailable,  # type: ignore[arg-type]
        field="spec.rollout",
    )
    assert (problems == []) is ok
    assert all(p.field.startswith("spec.rollout.max") for p in problems)


def test_annotations_are_limited_to_256_kib_in_all() -> None:
    assert kv.annotation_problems({"a": "x" * (256 * 1024 - 1)}, field="f") == []
    (problem,) = kv.annotation_problems({"a": "x" * (256 * 1024)}, field="f")
    assert problem.field == "f" and "262144" in problem.reason
    # Annotation keys are checked lower-cased, as ValidateAnnotations does.
    assert kv.annotation_problems({"Example.COM/Key": "v"}, field="f") == []
    assert kv.annotation_problems({"bad key!": "v"}, field="f") != []


def test_messages_are_go_s_words() -> None:
    (message,) = kv.is_dns1123_label("Bad_Name")
    assert message == (
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
        "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
        "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    )


@pytest.mark.parametrize("limit", [63, 253, 20])
@pytest.mark.parametrize(
    "name",
    ["short", "a" * 63, "a" * 64, "a" * 300, "a-" * 150, "a." * 150, "a_" * 40, "x" * 62 + "-y"],
)
def test_shorten_is_deterministic_bounded_and_valid(name: str, limit: int) -> None:
    short = kv.shorten(name, limit=limit)
    assert short == kv.shorten(name, limit=limit)
    assert len(short) <= limit
    if len(name) <= limit:
        assert short == name
    else:
        assert short[-1].isalnum() and short[0] == name[0]
        if limit <= 63:
            assert kv.is_valid_label_value(short) == [] or not kv.is_valid_label_value(name[:1])
        assert kv.is_dns1123_subdomain(short) == [] or "_" in name


def test_shortened_names_stay_distinct() -> None:
    names = [f"{'a' * 70}-{i}" for i in range(200)]
    assert len({kv.shorten(n, limit=63) for n in names}) == len(names)
