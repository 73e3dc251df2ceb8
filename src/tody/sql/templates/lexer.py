"""Lexing: the template source into text and tags, and tag contents into expression tokens.

Tags follow Tornado's syntax: `{{ expr }}`, `{% statement %}`, `{# comment #}`; `{{!`, `{%!` and
`{#!` print the opener literally. A tag ends at the first `}}` / `%}` found outside string literals
and brackets, so `{{ custom_error({'error': 'x'}) }}` is one tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tody.sql.templates.errors import MAX_TEMPLATE_CHARS, TemplateError

NAME, NUMBER, STRING, OP, END = "name", "number", "string", "op", "end"

# Longest first: the parser refuses the ones it does not support with a precise message.
_OPERATORS = (
    "**=", "//=", ">>=", "<<=", "...",
    "**", "//", "==", "!=", "<=", ">=", ":=", "->", "<<", ">>", "+=", "-=", "*=", "/=", "%=",
    "+", "-", "*", "/", "%", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ":", ".", ";",
    "@", "~", "&", "|", "^", "!",
)  # fmt: skip
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WORD_RE = re.compile(r"\s*([A-Za-z_]+)")
_SIMPLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "0": "\0",
                   "a": "\a", "b": "\b", "f": "\f", "v": "\v"}  # fmt: skip
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_CLOSE = {")": "(", "]": "[", "}": "{"}
_DIGITS = frozenset("0123456789")
MAX_NUMBER_CHARS = 100


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    value: object  # the name / operator text, the decoded string, the int or float
    pos: int


@dataclass(frozen=True, slots=True)
class Segment:
    kind: str  # "text", "expr" ({{ }}), "stmt" ({% %})
    pos: int
    text: str = ""  # text segments
    tokens: tuple[Token, ...] = ()  # tag segments, ending with an END token
    keyword: str = ""  # stmt segments: the first word ("if", "for", …)


def line_of(source: str, pos: int) -> int:
    return source.count("\n", 0, pos) + 1


def syntax_error(source: str, pos: int, message: str) -> TemplateError:
    return TemplateError(f"Template syntax error at line {line_of(source, pos)}: {message}")


def segments(source: str) -> list[Segment]:
    """Split a template body into text and tag segments (comments dropped)."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"The template is too long: the limit is {MAX_TEMPLATE_CHARS} characters")
    out: list[Segment] = []
    text: list[str] = []
    text_pos = 0
    pos = 0
    n = len(source)

    def flush() -> None:
        if text:
            out.append(Segment("text", text_pos, text="".join(text)))
            text.clear()

    while pos < n:
        start = source.find("{", pos)
        while start != -1 and source[start + 1 : start + 2] not in ("{", "%", "#"):
            start = source.find("{", start + 1)
        if start == -1:
            if not text:
                text_pos = pos
            text.append(source[pos:])
            break
        if start > pos:
            if not text:
                text_pos = pos
            text.append(source[pos:start])
        opener = source[start : start + 2]
        if source[start + 2 : start + 3] == "!":  # {{! {%! {#! print the opener itself
            if not text:
                text_pos = start
            text.append(opener)
            pos = start + 3
            continue
        flush()
        if opener == "{#":
            end = source.find("#}", start + 2)
            if end == -1:
                raise syntax_error(source, start, "comment '{#' is never closed with '#}'")
            pos = end + 2
            continue
        if opener == "{%":
            word = _WORD_RE.match(source, start + 2)
            if word and word.group(1) == "comment":  # {% comment anything %}: free text
                end = source.find("%}", word.end())
                if end == -1:
                    raise syntax_error(source, start, "tag '{%' is never closed with '%}'")
                pos = end + 2
                continue
        terminator = "}}" if opener == "{{" else "%}"
        tokens, pos = tokenize(source, start + 2, terminator)
        kind = "expr" if opener == "{{" else "stmt"
        keyword = ""
        if kind == "stmt" and tokens[0].kind == NAME:
            keyword = str(tokens[0].value)
        out.append(Segment(kind, start, tokens=tuple(tokens), keyword=keyword))
    flush()
    return out


def tokenize(source: str, pos: int, terminator: str) -> tuple[list[Token], int]:
    """Tokens from `pos` up to `terminator` (outside brackets); returns them and the position after it."""
    tokens: list[Token] = []
    stack: list[tuple[str, int]] = []
    n = len(source)
    opened_at = pos - 2
    while True:
        while pos < n and source[pos] in " \t\r\n\f\v":
            pos += 1
        if pos >= n:
            if stack:
                raise syntax_error(source, stack[-1][1], f"'{stack[-1][0]}' is never closed")
            raise syntax_error(source, opened_at, f"tag is never closed with '{terminator}'")
        if not stack and source.startswith(terminator, pos):
            tokens.append(Token(END, terminator, pos))
            return tokens, pos + len(terminator)
        ch = source[pos]
        if ch in "'\"":
            value, end = _string(source, pos, raw=False, opened_at=pos)
            tokens.append(Token(STRING, value, pos))
            pos = end
            continue
        if ch in _DIGITS or (ch == "." and source[pos + 1 : pos + 2] in _DIGITS):
            pos = _number(source, pos, tokens)
            continue
        match = _NAME_RE.match(source, pos)
        if match:
            word = match.group(0)
            end = match.end()
            if source[end : end + 1] in ("'", '"'):
                prefix = word.lower()
                if "f" in prefix:
                    raise syntax_error(source, pos, "f-strings are not allowed in templates")
                if prefix not in ("r", "u"):
                    raise syntax_error(source, pos, f"string prefix '{word}' is not supported")
                value, end = _string(source, end, raw=prefix == "r", opened_at=pos)
                tokens.append(Token(STRING, value, pos))
                pos = end
                continue
            tokens.append(Token(NAME, word, pos))
            pos = end
            continue
        for op in _OPERATORS:
            if source.startswith(op, pos):
                break
        else:
            raise syntax_error(source, pos, f"unexpected character {ch!r}")
        if op in ("(", "[", "{"):
            if len(stack) >= 200:
                raise syntax_error(source, pos, "brackets are nested too deeply")
            stack.append((op, pos))
        elif op in _CLOSE:
            if not stack:
                raise syntax_error(source, pos, f"unmatched '{op}'")
            if stack[-1][0] != _CLOSE[op]:
                raise syntax_error(source, stack[-1][1], f"'{stack[-1][0]}' is never closed")
            stack.pop()
        tokens.append(Token(OP, op, pos))
        pos += len(op)


def _number(source: str, pos: int, tokens: list[Token]) -> int:
    match = _NUMBER_RE.match(source, pos)
    assert match is not None
    text = match.group(0)
    end = match.end()
    if end < len(source) and (source[end].isalnum() or source[end] == "_"):
        raise syntax_error(source, pos, f"invalid number '{text}{source[end]}…'")
    if len(text) > MAX_NUMBER_CHARS:
        raise syntax_error(source, pos, f"number literal is too long (over {MAX_NUMBER_CHARS} characters)")
    is_float = any(c in text for c in ".eE")
    tokens.append(Token(NUMBER, float(text) if is_float else int(text), pos))
    return end


def _string(source: str, pos: int, raw: bool, opened_at: int) -> tuple[str, int]:
    quote = source[pos]
    if source.startswith(quote * 3, pos):
        raise syntax_error(source, opened_at, "triple-quoted strings are not supported")
    out: list[str] = []
    i = pos + 1
    n = len(source)
    while True:
        if i >= n or source[i] == "\n":
            raise syntax_error(source, opened_at, "string literal is never closed")
        ch = source[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = source[i + 1 : i + 2]
        if raw:
            out.append(ch + nxt)  # in r'' strings a backslash stays, and still protects a quote
            i += 2
            continue
        if nxt == "\n":
            i += 2
        elif nxt in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[nxt])
            i += 2
        elif nxt in _HEX_ESCAPES:
            digits = source[i + 2 : i + 2 + _HEX_ESCAPES[nxt]]
            if len(digits) != _HEX_ESCAPES[nxt] or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise syntax_error(source, i, f"invalid escape '\\{nxt}{digits}' in string literal")
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise syntax_error(source, i, f"invalid escape '\\{nxt}{digits}' in string literal")
            out.append(chr(code))
            i += 2 + len(digits)
        elif nxt == "N":
            raise syntax_error(source, i, "'\\N{…}' escapes are not supported")
        else:
            out.append(ch)  # unknown escapes keep their backslash, as in Python
            i += 1
