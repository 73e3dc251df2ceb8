"""The ClickHouse dialect the gate parses and regenerates with, and a check of the regenerated text.

sqlglot's stock ClickHouse dialect maps many function names to typed expressions and may emit a
different function than the one written (`rand()` becomes `randCanonical()`, `toStartOfDay(x)`
becomes `dateTrunc('DAY', x)`, `if(a, b, c)` becomes `CASE`). For a gate that is both a correctness
and a safety problem, so this dialect keeps every ordinary call as written (an empty `FUNCTIONS`
table) and only keeps the parsers for real syntax (CAST, EXTRACT(... FROM ...), POSITION(... IN ...),
SUBSTRING(... FROM ...), TRIM(BOTH ...), COLUMNS, CASE, tuple, view). Two generator fixes:
`SAMPLE` is emitted after the FROM table (sqlglot puts it after LIMIT, which ClickHouse rejects), and
comments are never emitted.

`called_names` then reads the *regenerated* text with the tokenizer and reports every name that is
followed by `(`: whatever the generator does, that is exactly what ClickHouse will call.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.errors import ErrorLevel
from sqlglot.generators.clickhouse import ClickHouseGenerator
from sqlglot.parsers.clickhouse import ClickHouseParser
from sqlglot.tokens import Token, TokenType

_SYNTAX_PARSERS = {"CAST", "EXTRACT", "POSITION", "SUBSTRING", "TRIM", "COLUMNS", "TUPLE", "AND", "OR", "XOR"}
_SYNTAX_PARSERS |= {"VIEW"}  # parsed so that view(SELECT ...) can be refused by name


class _Parser(ClickHouseParser):
    FUNCTIONS: dict = {}
    FUNCTION_PARSERS = {k: v for k, v in ClickHouseParser.FUNCTION_PARSERS.items() if k in _SYNTAX_PARSERS}
    NO_PAREN_FUNCTION_PARSERS = {
        k: v for k, v in ClickHouseParser.NO_PAREN_FUNCTION_PARSERS.items() if k == "CASE"
    }


class _Generator(ClickHouseGenerator):
    def after_limit_modifiers(self, expression: exp.Expr) -> list[str]:
        modifiers = super().after_limit_modifiers(expression)
        sample = self.sql(expression, "sample")
        return [m for m in modifiers if m != sample] if sample else modifiers

    def from_sql(self, expression: exp.From) -> str:
        sql = super().from_sql(expression)
        parent = expression.parent
        sample = parent.args.get("sample") if isinstance(parent, exp.Query) else None
        return sql + self.sql(sample) if sample is not None else sql


class TodyClickHouse(ClickHouse):
    Parser = _Parser
    Generator = _Generator


DIALECT = TodyClickHouse()

try:
    DIALECT.parser()
    DIALECT.generator()
except TypeError as exc:  # sqlglotc (mypyc-compiled sqlglot) forbids subclassing its parser
    raise ImportError(
        "tody's SQL gate needs the pure-Python sqlglot: uninstall sqlglotc (sqlglot[c])"
    ) from exc


def generate(tree: exp.Expr) -> str:
    """ClickHouse SQL for `tree` (which may be modified): no comments; constructs the dialect cannot
    express raise."""
    return DIALECT.generate(tree, copy=False, comments=False, unsupported_level=ErrorLevel.RAISE)


# Unquoted words that may precede "(" without being a function call.
STRUCTURAL_WORDS = frozenset(
    {
        "AS", "FROM", "JOIN", "ON", "USING", "WHERE", "PREWHERE", "HAVING", "QUALIFY", "AND", "OR",
        "NOT", "THEN", "ELSE", "WHEN", "CASE", "OVER", "ALL", "UNION", "INTERSECT", "EXCEPT", "DISTINCT",
        "EXISTS", "LIMIT", "OFFSET", "INTERVAL", "FILTER", "WITH", "SELECT", "BETWEEN", "IS", "BY",
        "ROLLUP", "CUBE", "SETS", "SAMPLE", "COLUMNS", "FILL", "TO", "STEP", "STALENESS", "INTERPOLATE",
        "VALUES",  # FROM VALUES (...): a scalar VALUES() is refused on the tree
        "TRIM", "EXTRACT",  # TRIM(BOTH x FROM y), EXTRACT(DAY FROM x): parser syntax for allowed functions
    }
)  # fmt: skip
# Words that end an operand, so that a following "IN (" is the operator and not the function `in`.
_OPERAND_END = {TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.NUMBER, TokenType.STRING, TokenType.STAR}


def _is_word(token: Token) -> bool:
    kind = token.token_type
    if kind == TokenType.IDENTIFIER:
        return True
    if kind == TokenType.NUMBER or kind.name.endswith("STRING"):
        return False
    text = token.text
    return bool(text) and (text[0].isalpha() or text[0] == "_") and text.replace("_", "a").isalnum()


def called_names(sql: str) -> Iterator[tuple[str, str]]:
    """(kind, name) for every call in `sql`: kind "call" for `name(`, "apply" for `APPLY(name)`,
    "bare" for an unqualified identifier that is not followed by "(" (ClickHouse may call a few
    functions without parentheses)."""
    tokens = DIALECT.tokenize(sql)
    count = len(tokens)
    for i, token in enumerate(tokens):
        if not _is_word(token):
            continue
        nxt = tokens[i + 1] if i + 1 < count else None
        prev = tokens[i - 1] if i else None
        quoted = token.token_type == TokenType.IDENTIFIER
        upper = token.text.upper()
        if nxt is None or nxt.token_type != TokenType.L_PAREN:
            dotted = (prev is not None and prev.token_type == TokenType.DOT) or (
                nxt is not None and nxt.token_type == TokenType.DOT
            )
            defines = (
                prev is not None and prev.text.upper() == "AS" and prev.token_type != TokenType.IDENTIFIER
            )
            if not dotted and not defines:
                yield "bare", token.text
            continue
        if quoted:
            yield "call", token.text
        elif upper == "IN":
            operator = prev is not None and (
                prev.token_type in _OPERAND_END
                or prev.text.upper() in ("NOT", "GLOBAL")
                or (_is_word(prev) and prev.text.upper() not in STRUCTURAL_WORDS)
            )
            if not operator:
                yield "call", token.text
        elif upper == "APPLY":
            if i + 3 < count and _is_word(tokens[i + 2]) and tokens[i + 3].token_type == TokenType.R_PAREN:
                yield "apply", tokens[i + 2].text
        elif upper not in STRUCTURAL_WORDS:
            yield "call", token.text
