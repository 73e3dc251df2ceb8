"""Adversarial templates and values.

- Every case of adversarial.json must raise TemplateError (never run anything: eval/exec/compile are
  booby-trapped while rendering, and the package source never calls them).
- Structural limits (size, nesting, steps) are checked with generated templates.
- Injection: hostile request values rendered through every output path must come back from
  ClickHouse exactly as sent, i.e. they only ever appear as correctly escaped literals.
"""

from __future__ import annotations

import builtins
import json
import random
import re
from contextlib import contextmanager
from pathlib import Path

import pytest

from tody.sql.gate import validate_expression
from tody.sql.templates import TemplateError, TemplateHTTPError, params, render

HERE = Path(__file__).parent
CASES = json.loads((HERE / "adversarial.json").read_text(encoding="utf-8"))
VALUES = {"x": "1", "s": "abc"}


def r(body: str, values: dict | None = None, **kwargs) -> str:
    return render("%\n" + body, values or {}, **kwargs)


@contextmanager
def trapped():
    """Make the dynamic-code builtins explode if anything calls them inside the block."""
    saved = {name: getattr(builtins, name) for name in ("eval", "exec", "compile")}

    def trap(*args, **kwargs):  # pragma: no cover - reaching this is the failure
        raise AssertionError("a template made Python run dynamic code")

    for name in saved:
        setattr(builtins, name, trap)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(builtins, name, fn)


def refusal(body: str, values: dict | None = None, *, check_params: bool = False) -> TemplateError:
    """Render (and optionally read the params of) a template that must be refused; return the error."""
    caught: Exception | None = None
    with trapped():
        try:
            if check_params:
                params("%\n" + body)
            else:
                r(body, values)
        except Exception as exc:
            caught = exc
    assert isinstance(caught, TemplateError), f"not refused: {body[:80]!r} ({caught!r})"
    assert not isinstance(caught, TemplateHTTPError)
    return caught


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["template"][:50])
def test_adversarial_templates_are_refused(case):
    error = refusal(case["template"], case.get("values", VALUES))
    assert case["error"] in str(error)
    if str(error).startswith("Template syntax error"):  # syntax refusals also stop params()
        refusal(case["template"], check_params=True)


def test_package_never_runs_dynamic_code():
    source_dir = Path(__import__("tody.sql.templates").sql.templates.__file__).parent
    forbidden = re.compile(r"(?<![\w.])(eval|exec|compile|__import__)\(|\bimport ast\b|\bimportlib\b|tornado")
    for path in source_dir.glob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not forbidden.search(line), f"{path.name}:{number}: {line.strip()}"


# -- generated limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x" * 256_001, "The template is too long"),
        ("{% if 1 %}" * 51 + "{% end %}" * 51, "blocks are nested too deeply (the limit is 50)"),
        ("{% for i in [1] %}" * 51 + "{% end %}" * 51, "blocks are nested too deeply"),
        ("{{ " + "(" * 60 + "1" + ")" * 60 + " }}", "the expression is nested too deeply"),
        ("{{ " + "-" * 60 + "1 }}", "the expression is nested too deeply"),
        ("{{ " + "not " * 60 + "1 }}", "the expression is nested too deeply"),
        ("{{ " + "[" * 60 + "]" * 60 + " }}", "the expression is nested too deeply"),
        ("{{ " + "len(" * 60 + "'a'" + ")" * 60 + " }}", "the expression is nested too deeply"),
        ("{{ " + "+".join(["x"] * 200) + " }}", "the expression is too deep (the limit is 100)"),
        ("{{ " + "(" * 300 + "1" + ")" * 300 + " }}", "brackets are nested too deeply"),
        ("{% for i in range(10000) %}{% set a = [" + "0," * 200 + "] %}{% end %}", "too much work"),
    ],
)
def test_generated_limits(body, message):
    assert message in str(refusal(body, VALUES))


def test_limits_allow_reasonable_templates():
    assert r("{% if 1 %}" * 50 + "ok" + "{% end %}" * 50) == "ok"
    assert r("{{ " + "(" * 40 + "1" + ")" * 40 + " }}") == "1"
    assert r("{{ " + " and ".join(["1"] * 500) + " }}") == "1"  # flat and/or chains are not deep
    assert r("{% for i in range(10000) %}{% end %}done") == "done"
    assert len(r("{{ 'x' * 999000 }}")) == 999_002


def test_long_loops_do_not_exhaust_the_stack():
    body = "{% for i in range(100) %}" + "{% if 1 %}" * 45 + "{{ i }}" + "{% end %}" * 45 + "{% end %}"
    assert r(body).endswith("99")


# -- injection: values survive as literals -------------------------------------------------------------

NASTY = [
    "' OR 1=1 --",
    "\\'",
    "\\",
    "abc\\",
    "\\\\'",
    "a\\'b",
    "'; DROP TABLE t; --",
    "' UNION SELECT * FROM other.secret --",
    "a\nb\rc\td",
    "x\x00y",
    "\x01\x02\x1b\x7f",
    "`id`",
    "$$x$$",
    '"q"',
    "''",
    "é€𝄞",
    "\u2028",
    "{{ x }}",
    "{% if 1 %}",
    "%s %d",
    "\\x41\\n",
    "' || '",
    "/* c */ 1",
    "-- c",
    "# c",
    "\\u0027",
    "__import__('os')",
]


def _select(engine, literal: str) -> object:
    data = engine.query(f"SELECT {literal} AS v", "JSONEachRow").data
    return json.loads(data)["v"]


@pytest.mark.parametrize("value", NASTY, ids=repr)
def test_hostile_strings_round_trip_through_clickhouse(engine, value):
    as_string = r("{{ String(v) }}", {"v": value})
    assert _select(engine, as_string) == value
    assert r("{{ v }}", {"v": value}) == as_string  # an untyped value is a String literal too
    assert _select(engine, validate_expression(as_string)) == value  # and survives the SQL gate
    as_array = r("{{ Array(v, 'String') }}", {"v": [value, value + "2"]})
    assert _select(engine, as_array) == [value, value + "2"]
    assert _select(engine, r("{{ v }}", {"v": [value, "z"]})) == [value, "z"]
    json_value = json.dumps({"k": value})
    assert _select(engine, r("{{ JSON(v) }}", {"v": json_value})) == json_value


@pytest.mark.parametrize("value", NASTY, ids=repr)
def test_hostile_values_in_sql_and_and_sql_unescape(engine, value):
    rows = f"SELECT arrayJoin([{r('{{ String(v) }}', {'v': value})}, 'other']) AS v"
    cond = r(
        "{{ sql_and(v__in=Array(v, 'String'), v__not_in=Array(w, 'String')) }}", {"v": [value, "z"], "w": "q"}
    )
    assert engine.query(f"SELECT count() FROM ({rows}) WHERE {cond}", "TSV").data.strip() == b"1"
    cond = r("{{ sql_and(v__eq=String(v)) }}", {"v": value})
    assert engine.query(f"SELECT count() FROM ({rows}) WHERE {cond}", "TSV").data.strip() == b"1"
    unescaped = r("{{ sql_unescape(String(v), '%\\'_') }}", {"v": value})
    assert _select(engine, unescaped) == value.replace("\\%", "%").replace("\\'", "'").replace("\\_", "_")


@pytest.mark.parametrize(
    ("body", "value", "expected"),
    [
        ("{{ Int8(v) }}", "-128", -128),
        ("{{ UInt64(v) }}", str(2**64 - 1), 2**64 - 1),
        ("{{ Int128(v) }}", str(-(2**127)), -(2**127)),
        ("{{ UInt128(v) }}", str(2**128 - 1), 2**128 - 1),
        ("{{ Int256(v) }}", str(2**255 - 1), 2**255 - 1),
        ("{{ Int256(v) }}", str(-(2**255)), -(2**255)),
        ("{{ UInt256(v) }}", str(2**256 - 1), 2**256 - 1),
        ("{{ Float64(v) }}", "-1.5e-7", -1.5e-7),
        ("{{ Boolean(v) }}", "TRUE", 1),
        ("{{ Date(v) }}", "2024-02-29", "2024-02-29"),
        ("toDateTime({{ DateTime(v) }}, 'UTC')", "2024-02-29T23:59:59", "2024-02-29 23:59:59"),
        ("toDateTime64({{ DateTime64(v) }}, 3, 'UTC')", "2024-02-29 23:59:59.125", "2024-02-29 23:59:59.125"),
        (
            "toUUID({{ UUID(v) }})",
            "123E4567-E89B-12D3-A456-426614174000",
            "123e4567-e89b-12d3-a456-426614174000",
        ),
        ("{{ Array(v, 'Int64') }}", "-1,9223372036854775807", [-1, 9223372036854775807]),
        ("{{ column(v) }}", "v", None),
    ],
)
def test_typed_literals_mean_what_they_say_in_clickhouse(engine, body, value, expected):
    literal = r(body, {"v": value})
    if expected is None:  # an identifier: resolve it against a one-column subquery
        data = engine.query(f"SELECT {literal} AS out FROM (SELECT 7 AS v)", "JSONEachRow").data
        assert json.loads(data)["out"] == 7
        return
    assert _select(engine, literal) == expected


def test_negative_values_cannot_comment_out_the_rest(engine):
    sql = r("SELECT 10-{{ Int32(n) }} AS v, 'tail' AS t", {"n": "-5"})
    assert json.loads(engine.query(sql, "JSONEachRow").data) == {"v": 15, "t": "tail"}


# -- fuzzing -------------------------------------------------------------------------------------------

_ATOMS = ["x", "s", "l", "1", "-1", "2.5", "'a'", "'%'", "None", "True", "[1, 2]", "(1,)", "''", "1e308"]
_OPS = ["+", "-", "*", "/", "//", "%", "==", "<", ">=", "in", "not in", "is", "and", "or"]
_FUNCS = ["String", "Int32", "UInt8", "Int256", "Float32", "Boolean", "Date", "DateTime", "Array", "defined",
          "column", "columns", "symbol", "sql_and", "split_to_array", "len", "max", "range", "int", "str",
          "error", "custom_error", "day_diff", "sql_unescape", "enumerate"]  # fmt: skip


def _random_expr(rng: random.Random, depth: int = 0) -> str:
    k = rng.random()
    if depth > 3 or k < 0.3:
        return rng.choice(_ATOMS)
    if k < 0.5:
        return f"{_random_expr(rng, depth + 1)} {rng.choice(_OPS)} {_random_expr(rng, depth + 1)}"
    if k < 0.6:
        return f"not {_random_expr(rng, depth + 1)}"
    if k < 0.7:
        return f"{_random_expr(rng, depth + 1)}[{_random_expr(rng, depth + 1)}]"
    args = [rng.choice(["x", "s", "l", "c"])] + [
        _random_expr(rng, depth + 1) for _ in range(rng.randint(0, 2))
    ]
    if rng.random() < 0.3:
        args.append(
            rng.choice(["default=", "defined=", "enum=", "code=", "a__in="]) + _random_expr(rng, depth + 1)
        )
    return f"{rng.choice(_FUNCS)}({', '.join(args)})"


def _random_template(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 4)):
        a, b = _random_expr(rng), _random_expr(rng)
        parts.append(
            rng.choice(
                [
                    "{{ " + a + " }}",
                    "{% if " + a + " %}a{% else %}{{ " + b + " }}{% end %}",
                    "{% for i in " + a + " %}{{ i }}{% end %}",
                    "{% set x = " + a + " %}",
                    " text- ",
                ]
            )
        )
    body = "".join(parts)
    if rng.random() < 0.2:  # corrupt a few characters
        chars = list(body)
        for _ in range(3):
            chars[rng.randrange(len(chars))] = rng.choice("{}%#()[]'\",.:=-*")
        body = "".join(chars)
    return body


def test_random_templates_only_raise_template_errors():
    rng = random.Random(20240601)
    values = {"x": "1", "s": "a,b", "l": ["1", "2"], "c": "col"}
    for _ in range(3000):
        body = _random_template(rng)
        try:
            r(body, values)
        except (TemplateError, TemplateHTTPError):
            pass
        try:
            params("%\n" + body)
        except TemplateError:
            pass
