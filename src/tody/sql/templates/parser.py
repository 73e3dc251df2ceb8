"""Parsing: template segments into a tree of blocks, and tag contents into expression trees.

The expression language is a small, explicit subset of Python's: literals, names, calls of the
allow-listed template functions, `not`/`and`/`or`, comparisons, `+ - * / // %`, unary minus,
subscripts and `a if c else b`. Everything else is refused here, with the construct named, so a
template that is accepted can only contain node kinds the evaluator knows.
"""

from __future__ import annotations

from functools import lru_cache

from tody.sql.templates.errors import MAX_DEPTH, MAX_EXPRESSION_DEPTH
from tody.sql.templates.functions import FUNCTIONS
from tody.sql.templates.lexer import END, NAME, NUMBER, OP, STRING, Token, segments, syntax_error
from tody.sql.templates.nodes import (
    BinOp,
    BoolOp,
    Break,
    Call,
    Compare,
    Const,
    Continue,
    DictExpr,
    For,
    If,
    IfExp,
    ListExpr,
    Name,
    Output,
    Set,
    Subscript,
    Template,
    Text,
    TupleExpr,
    Unary,
    children,
)

# -- expression parser ---------------------------------------------------------------------------------

OR, AND, NOT, CMP, ADD, MUL = 1, 2, 3, 4, 5, 6
_CMP_OPS = {"==", "!=", "<", "<=", ">", ">="}
_CONSTANTS = {"True": True, "False": False, "None": None}
_REFUSED_WORDS = {
    "lambda": "lambda expressions are not allowed in templates",
    "yield": "'yield' is not allowed in templates",
    "await": "'await' is not allowed in templates",
    "import": "imports are not allowed in templates",
    "from": "imports are not allowed in templates",
    "def": "function definitions are not allowed in templates",
    "class": "class definitions are not allowed in templates",
}
_KEYWORDS = {
    "and", "or", "not", "in", "is", "if", "else", "elif", "for", "while", "async", "return", "del",
    "global", "nonlocal", "assert", "pass", "raise", "try", "except", "finally", "with", "as",
    "break", "continue", *_REFUSED_WORDS, *_CONSTANTS,
}  # fmt: skip
_REFUSED_OPS = {
    "**": "the '**' operator is not allowed in templates",
    ":=": "assignment expressions (':=') are not allowed in templates",
    "@": "the '@' operator is not allowed in templates",
    "&": "bitwise operators are not allowed in templates",
    "|": "bitwise operators are not allowed in templates",
    "^": "bitwise operators are not allowed in templates",
    "~": "bitwise operators are not allowed in templates",
    "<<": "bitwise operators are not allowed in templates",
    ">>": "bitwise operators are not allowed in templates",
    "...": "'...' is not allowed in templates",
    ";": "';' is not allowed in template expressions",
}


class ExprParser:
    def __init__(self, source: str, tokens: tuple[Token, ...], start: int = 0):
        self.source = source
        self.tokens = tokens
        self.i = start
        self.depth = 0

    # -- token helpers
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != END:
            self.i += 1
        return tok

    def at_op(self, *ops: str) -> bool:
        tok = self.peek()
        return tok.kind == OP and tok.value in ops

    def at_word(self, word: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind == NAME and tok.value == word

    def error(self, tok: Token, message: str) -> Exception:
        return syntax_error(self.source, tok.pos, message)

    def unexpected(self, tok: Token) -> Exception:
        if tok.kind == END:
            return self.error(tok, "the expression is incomplete")
        if tok.kind == OP and tok.value in _REFUSED_OPS:
            return self.error(tok, _REFUSED_OPS[str(tok.value)])
        if tok.kind == OP and tok.value in ("+=", "-=", "*=", "/=", "//=", "%=", "**=", "<<=", ">>="):
            return self.error(tok, "assignment operators are not allowed in templates")
        if tok.kind == NAME and tok.value in _REFUSED_WORDS:
            return self.error(tok, _REFUSED_WORDS[str(tok.value)])
        if tok.kind == NAME and tok.value == "for":
            return self.error(tok, "comprehensions and generator expressions are not allowed in templates")
        shown = repr(tok.value) if tok.kind in (STRING, NUMBER) else f"'{tok.value}'"
        return self.error(tok, f"unexpected {shown}")

    def expect_op(self, op: str) -> Token:
        if not self.at_op(op):
            raise self.unexpected(self.peek())
        return self.advance()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(self.peek(), f"the expression is nested too deeply (the limit is {MAX_DEPTH})")

    def leave(self) -> None:
        self.depth -= 1

    # -- grammar
    def parse_all(self) -> object:
        if self.peek().kind == END:
            raise self.error(self.peek(), "empty expression")
        node = self.expression()
        if self.peek().kind != END:
            raise self.unexpected(self.peek())
        check_depth(self.source, node)
        return node

    def expression(self) -> object:
        self.enter()
        tok = self.peek()
        node = self.binary(0)
        if self.at_word("if"):
            self.advance()
            test = self.binary(0)
            if not self.at_word("else"):
                raise self.error(self.peek(), "expected 'else' in conditional expression")
            self.advance()
            node = IfExp(test, node, self.expression(), tok.pos)
        if self.at_word("for") or self.at_op(":=") or self.at_op("**"):
            raise self.unexpected(self.peek())
        self.leave()
        return node

    def binary_op(self) -> tuple[str | None, int]:
        tok = self.peek()
        if tok.kind == NAME:
            word = tok.value
            if word == "or":
                return "or", OR
            if word == "and":
                return "and", AND
            if word == "in":
                return "in", CMP
            if word == "not" and self.at_word("in", 1):
                return "not in", CMP
            if word == "is":
                return ("is not" if self.at_word("not", 1) else "is"), CMP
            return None, -1
        if tok.kind != OP:
            return None, -1
        op = str(tok.value)
        if op in _CMP_OPS:
            return op, CMP
        if op in ("+", "-"):
            return op, ADD
        if op in ("*", "/", "//", "%"):
            return op, MUL
        if op in _REFUSED_OPS and op not in (";",):
            raise self.error(tok, _REFUSED_OPS[op])
        return None, -1

    def binary(self, min_prec: int) -> object:
        tok = self.peek()
        if self.at_word("not") and min_prec <= NOT:
            self.advance()
            self.enter()
            left: object = Unary("not", self.binary(NOT), tok.pos)
            self.leave()
        else:
            left = self.unary()
        while True:
            op, prec = self.binary_op()
            if op is None or prec < min_prec:
                return left
            if prec == CMP:
                ops: list[str] = []
                comparators: list[object] = []
                while op is not None and prec == CMP:
                    self.advance()
                    if op in ("not in", "is not"):
                        self.advance()
                    ops.append(op)
                    comparators.append(self.binary(CMP + 1))
                    op, prec = self.binary_op()
                left = Compare(left, tuple(ops), tuple(comparators), tok.pos)
                continue
            self.advance()
            right = self.binary(prec + 1)
            if op in ("and", "or"):
                if isinstance(left, BoolOp) and left.op == op:
                    left = BoolOp(op, (*left.values, right), left.pos)
                else:
                    left = BoolOp(op, (left, right), tok.pos)
            else:
                left = BinOp(op, left, right, tok.pos)

    def unary(self) -> object:
        tok = self.peek()
        if self.at_op("-", "+"):
            self.advance()
            self.enter()
            operand = self.unary()
            self.leave()
            if isinstance(operand, Const) and type(operand.value) in (int, float):
                value = operand.value
                return Const(-value if tok.value == "-" else value, tok.pos)  # type: ignore[operator]
            return Unary(str(tok.value), operand, tok.pos)
        if self.at_op("*", "**"):
            raise self.error(tok, f"'{tok.value}' unpacking (star-arguments) is not allowed in templates")
        return self.postfix()

    def postfix(self) -> object:
        node = self.primary()
        while True:
            tok = self.peek()
            if self.at_op("("):
                if not isinstance(node, Name):
                    raise self.error(tok, "only template functions can be called, by their name")
                node = self.call(node)
            elif self.at_op("["):
                node = self.subscript(node)
            elif self.at_op("."):
                self.advance()
                nxt = self.peek()
                attr = f".{nxt.value}" if nxt.kind == NAME else "."
                raise self.error(tok, f"attribute access ('{attr}') is not allowed in templates")
            else:
                return node

    def primary(self) -> object:
        tok = self.advance()
        if tok.kind == NUMBER:
            return Const(tok.value, tok.pos)
        if tok.kind == STRING:
            parts = [str(tok.value)]
            while self.peek().kind == STRING:
                parts.append(str(self.advance().value))
            return Const("".join(parts), tok.pos)
        if tok.kind == NAME:
            word = str(tok.value)
            if word in _CONSTANTS:
                return Const(_CONSTANTS[word], tok.pos)
            if word in _KEYWORDS:
                raise self.unexpected(tok)
            check_name(self.source, tok)
            return Name(word, tok.pos)
        if tok.kind == OP and tok.value == "(":
            if self.at_op(")"):
                self.advance()
                return TupleExpr((), tok.pos)
            first = self.expression()
            if self.at_op(","):
                items = [first]
                while self.at_op(","):
                    self.advance()
                    if self.at_op(")"):
                        break
                    items.append(self.expression())
                first = TupleExpr(tuple(items), tok.pos)
            self.expect_op(")")
            return first
        if tok.kind == OP and tok.value == "[":
            items = []
            while not self.at_op("]"):
                items.append(self.expression())
                if self.at_op(","):
                    self.advance()
                elif not self.at_op("]"):
                    raise self.unexpected(self.peek())
            self.advance()
            return ListExpr(tuple(items), tok.pos)
        if tok.kind == OP and tok.value == "{":
            raise self.error(
                tok, "dict literals are only allowed as function arguments, e.g. custom_error({'error': '…'})"
            )
        raise self.unexpected(tok)

    def call(self, callee: Name) -> Call:
        name = callee.id
        if name not in FUNCTIONS:
            raise syntax_error(self.source, callee.pos, f"unknown function '{name}'")
        self.advance()  # (
        args: list[object] = []
        kwargs: list[tuple[str, object]] = []
        while not self.at_op(")"):
            tok = self.peek()
            if tok.kind == NAME and self.peek(1).kind == OP and self.peek(1).value == "=":
                check_name(self.source, tok)
                if any(k == tok.value for k, _ in kwargs):
                    raise self.error(tok, f"keyword argument '{tok.value}' is repeated")
                self.advance()
                self.advance()
                kwargs.append((str(tok.value), self.argument()))
            else:
                if kwargs:
                    raise self.error(tok, "positional argument follows keyword argument")
                args.append(self.argument())
            if self.at_op(","):
                self.advance()
            elif not self.at_op(")"):
                raise self.unexpected(self.peek())
        self.advance()
        if name == "defined" and (len(args) != 1 or kwargs or not isinstance(args[0], Name)):
            raise syntax_error(
                self.source,
                callee.pos,
                "defined() takes one bare parameter name: write defined(x), not defined('x')",
            )
        return Call(name, tuple(args), tuple(kwargs), callee.pos)

    def argument(self) -> object:
        if not self.at_op("{"):
            return self.expression()
        tok = self.advance()
        keys: list[object] = []
        values: list[object] = []
        while not self.at_op("}"):
            if self.at_op("**"):
                raise self.error(self.peek(), "'**' unpacking (star-arguments) is not allowed in templates")
            key = self.expression()
            if not isinstance(key, Const) or isinstance(key.value, float):
                raise self.error(tok, "dict keys must be literal strings or integers")
            self.expect_op(":")
            keys.append(key.value)
            values.append(self.expression())
            if self.at_op(","):
                self.advance()
            elif not self.at_op("}"):
                raise self.unexpected(self.peek())
        self.advance()
        return DictExpr(tuple(keys), tuple(values), tok.pos)

    def subscript(self, value: object) -> Subscript:
        tok = self.advance()  # [
        if self.at_op(":"):
            raise self.error(self.peek(), "slices are not allowed in templates")
        index = self.expression()
        if self.at_op(":"):
            raise self.error(self.peek(), "slices are not allowed in templates")
        self.expect_op("]")
        return Subscript(value, index, tok.pos)


def check_name(source: str, tok: Token) -> None:
    if str(tok.value).startswith("__"):
        raise syntax_error(source, tok.pos, f"names starting with '__' are not allowed ('{tok.value}')")


def check_depth(source: str, root: object) -> None:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            raise syntax_error(
                source,
                getattr(node, "pos", 0),
                f"the expression is too deep (the limit is {MAX_EXPRESSION_DEPTH})",
            )
        stack.extend((child, depth + 1) for child in children(node))


# -- template parser -----------------------------------------------------------------------------------

_UNSUPPORTED_TAGS = {
    "while", "try", "except", "finally", "raw", "include", "extends", "block", "module", "import",
    "from", "autoescape", "apply", "whitespace", "elseif", "endif", "endfor",
}  # fmt: skip


class _Frame:
    def __init__(self, kind: str, pos: int):
        self.kind = kind  # "if" or "for"
        self.pos = pos
        self.body: list[object] = []
        self.branches: list[tuple[object, list[object]]] = []  # if
        self.orelse: list[object] | None = None  # if
        self.targets: tuple[str, ...] = ()  # for
        self.iterable: object = None  # for


@lru_cache(maxsize=256)
def parse_template(source: str) -> Template:
    """Parse a template body (without its "%" line). Cached: templates are re-rendered per request."""
    root: list[object] = []
    stack: list[_Frame] = []
    current = root
    for seg in segments(source):
        if seg.kind == "text":
            current.append(Text(seg.text))
            continue
        if seg.kind == "expr":
            current.append(Output(ExprParser(source, seg.tokens).parse_all(), seg.pos))
            continue
        word = seg.keyword
        first = seg.tokens[0]
        if word == "if":
            if len(stack) >= MAX_DEPTH:
                raise syntax_error(
                    source, seg.pos, f"blocks are nested too deeply (the limit is {MAX_DEPTH})"
                )
            frame = _Frame("if", seg.pos)
            frame.branches.append((_rest(source, seg.tokens), frame.body))
            stack.append(frame)
            current = frame.body
        elif word in ("elif", "else"):
            frame = stack[-1] if stack else None
            if frame is None or frame.kind != "if" or frame.orelse is not None:
                where = "after {% else %}" if frame and frame.kind == "if" else "without a matching {% if %}"
                raise syntax_error(source, seg.pos, f"{{% {word} %}} {where}")
            if word == "elif":
                current = []
                frame.branches.append((_rest(source, seg.tokens), current))
            else:
                _expect_end(source, seg.tokens, 1)
                current = frame.orelse = []
        elif word == "end":
            _expect_end(source, seg.tokens, 1)
            if not stack:
                raise syntax_error(source, seg.pos, "{% end %} without a matching {% if %} or {% for %}")
            frame = stack.pop()
            current = _append_target(stack, root)
            current.append(_close(frame))
        elif word == "for":
            if len(stack) >= MAX_DEPTH:
                raise syntax_error(
                    source, seg.pos, f"blocks are nested too deeply (the limit is {MAX_DEPTH})"
                )
            frame = _Frame("for", seg.pos)
            frame.targets, frame.iterable = _for_header(source, seg.tokens)
            stack.append(frame)
            current = frame.body
        elif word == "set":
            current.append(_set(source, seg.tokens, seg.pos))
        elif word in ("break", "continue"):
            _expect_end(source, seg.tokens, 1)
            if not any(f.kind == "for" for f in stack):
                raise syntax_error(source, seg.pos, f"{{% {word} %}} outside a {{% for %}} loop")
            current.append(Break(seg.pos) if word == "break" else Continue(seg.pos))
        elif word in _UNSUPPORTED_TAGS:
            raise syntax_error(source, seg.pos, f"{{% {word} %}} is not supported in templates")
        elif first.kind == END:
            raise syntax_error(source, seg.pos, "empty {% %} tag")
        else:
            raise syntax_error(source, seg.pos, f"unknown template tag {{% {first.value} … %}}")
    if stack:
        frame = stack[-1]
        raise syntax_error(source, frame.pos, f"{{% {frame.kind} %}} is never closed with {{% end %}}")
    return Template(source, tuple(root))


def _append_target(stack: list[_Frame], root: list[object]) -> list[object]:
    """The body list that receives the next node: the innermost open branch, or the root."""
    if not stack:
        return root
    frame = stack[-1]
    if frame.kind == "if":
        return frame.orelse if frame.orelse is not None else frame.branches[-1][1]
    return frame.body


def _close(frame: _Frame) -> object:
    if frame.kind == "if":
        branches = tuple((cond, tuple(body)) for cond, body in frame.branches)
        return If(branches, tuple(frame.orelse) if frame.orelse is not None else None, frame.pos)
    return For(frame.targets, frame.iterable, tuple(frame.body), frame.pos)


def _rest(source: str, tokens: tuple[Token, ...]) -> object:
    if tokens[1].kind == END:
        raise syntax_error(source, tokens[0].pos, f"{{% {tokens[0].value} %}} needs a condition")
    return ExprParser(source, tokens, 1).parse_all()


def _expect_end(source: str, tokens: tuple[Token, ...], index: int) -> None:
    if tokens[index].kind != END:
        raise syntax_error(source, tokens[index].pos, f"unexpected text after {{% {tokens[0].value} %}}")


def _target(source: str, tok: Token) -> str:
    if tok.kind != NAME or tok.value in _KEYWORDS:
        raise syntax_error(source, tok.pos, "expected a variable name")
    check_name(source, tok)
    return str(tok.value)


def _for_header(source: str, tokens: tuple[Token, ...]) -> tuple[tuple[str, ...], object]:
    parser = ExprParser(source, tokens, 1)
    paren = parser.at_op("(")
    if paren:
        parser.advance()
    targets = [_target(source, parser.advance())]
    while parser.at_op(","):
        parser.advance()
        targets.append(_target(source, parser.advance()))
    if paren:
        parser.expect_op(")")
    if not parser.at_word("in"):
        raise syntax_error(source, parser.peek().pos, "expected {% for name in expression %}")
    parser.advance()
    return tuple(targets), parser.parse_all()


def _set(source: str, tokens: tuple[Token, ...], pos: int) -> Set:
    name_tok, eq = tokens[1], tokens[2] if len(tokens) > 2 else tokens[-1]
    name = _target(source, name_tok)
    if eq.kind != OP or eq.value != "=":
        raise syntax_error(source, eq.pos, "expected {% set name = expression %}")
    return Set(name, ExprParser(source, tokens, 3).parse_all(), pos)
