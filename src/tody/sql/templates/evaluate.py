"""The evaluator: walks a parsed template with request values and produces SQL.

Only the node kinds listed in `_EVALUATORS` can be evaluated and only the functions in
`functions.FUNCTIONS` can be called; nothing here compiles or executes Python. Every operator
checks its operand types (no implicit `%`-formatting, no string repetition beyond the limits) and
the work of one render is bounded: steps, loop iterations, sizes of strings, lists and output.
"""

from __future__ import annotations

from collections.abc import Mapping

from tody.sql.templates import nodes as p
from tody.sql.templates.errors import (
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_ITERATIONS,
    MAX_OUTPUT_CHARS,
    MAX_STEPS,
    MAX_STRING_CHARS,
    MAX_WORK_CHARS,
    TemplateError,
    TemplateHTTPError,
)
from tody.sql.templates.functions import FUNCTIONS
from tody.sql.templates.types import (
    MISSING,
    SQL,
    Budget,
    OutputTooLarge,
    Param,
    Undefined,
    a_type,
    sql_literal,
)


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_OUTPUT_LIMIT = f"The rendered SQL is too large: the limit is {MAX_OUTPUT_CHARS} characters"


class Renderer:
    def __init__(self, template: p.Template, values: Mapping[str, object], variables: Mapping[str, object]):
        self.template = template
        self.values = values
        self.variables = variables
        self.locals: dict[str, object] = {}
        self.out: list[str] = []
        self.budget = Budget(MAX_OUTPUT_CHARS)
        self.iterations = 0
        self.steps = 0
        self.work = 0

    # -- statements
    def render(self) -> str:
        try:
            self.run(self.template.body)
        except OutputTooLarge:
            raise TemplateError(_OUTPUT_LIMIT) from None
        except RecursionError:
            raise TemplateError("The template is nested too deeply to be rendered") from None
        except (TemplateError, TemplateHTTPError):
            raise
        except (TypeError, ValueError, ArithmeticError, LookupError, MemoryError) as exc:
            raise TemplateError(f"The template could not be rendered: {exc}") from None
        return "".join(self.out)

    def run(self, body: tuple) -> None:
        for node in body:
            kind = type(node)
            if kind is p.Text:
                self.emit(node.text)
            elif kind is p.Output:
                self.output(node)
            elif kind is p.If:
                self.run_if(node)
            elif kind is p.For:
                self.run_for(node)
            elif kind is p.Set:
                self.locals[node.name] = self.value_of(node.expr)
            elif kind is p.Break:
                raise _Break()
            elif kind is p.Continue:
                raise _Continue()
            else:  # pragma: no cover - the parser builds nothing else
                raise TemplateError(f"Unsupported template node {kind.__name__}")

    def emit(self, text: str) -> None:
        self.budget.take(text)
        self.out.append(text)

    def output(self, node: p.Output) -> None:
        value = self.value_of(node.expr)
        before = self.budget.remaining
        text = sql_literal(value, self.budget)
        self.budget.remaining = before
        # "1-{{x}}" with x = -5 must not become "1--5": "--" starts a SQL comment.
        if text.startswith("-") and self.out and self.out[-1].endswith("-"):
            text = " " + text
        self.emit(text)

    def run_if(self, node: p.If) -> None:
        for cond, body in node.branches:
            if self.truth(self.value_of(cond)):
                self.run(body)
                return
        if node.orelse is not None:
            self.run(node.orelse)

    def run_for(self, node: p.For) -> None:
        items = self.value_of(node.iterable)
        if isinstance(items, dict):
            items = list(items)
        if not isinstance(items, list | tuple | range | str):
            raise TemplateError(f"{{% for %}} needs a list to loop over (got {a_type(items)})")
        for item in items:
            self.iterations += 1
            if self.iterations > MAX_ITERATIONS:
                raise TemplateError(f"Too many loop iterations: the limit is {MAX_ITERATIONS} per template")
            self.assign(node.targets, item)
            try:
                self.run(node.body)
            except _Break:
                break
            except _Continue:
                continue

    def assign(self, targets: tuple, item: object) -> None:
        if len(targets) == 1:
            self.locals[targets[0]] = item
            return
        if not isinstance(item, list | tuple) or len(item) != len(targets):
            raise TemplateError(f"Cannot unpack {a_type(item)} into {len(targets)} loop variables")
        for name, value in zip(targets, item, strict=True):
            self.locals[name] = value

    # -- expressions
    def truth(self, value: object) -> bool:
        return bool(value)

    def value_of(self, node: object) -> object:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateError(f"The template does too much work: the limit is {MAX_STEPS} evaluation steps")
        method = _EVALUATORS.get(type(node))
        if method is None:  # pragma: no cover - the parser builds nothing else
            raise TemplateError(f"Unsupported expression {type(node).__name__}")
        return method(self, node)

    def lookup(self, name: str) -> object:
        for scope in (self.locals, self.variables, self.values):
            if name in scope:
                return scope[name]
        return MISSING

    def eval_const(self, node: p.Const) -> object:
        return node.value

    def eval_name(self, node: p.Name) -> object:
        value = self.lookup(node.id)
        if value is MISSING:
            raise TemplateError(
                f"Unknown name '{node.id}': no parameter or variable has this name. Test it with "
                f"defined({node.id}) or give it a type and a default, e.g. String({node.id}, '')"
            )
        return value

    def eval_list(self, node: p.ListExpr) -> list:
        return [self.value_of(item) for item in node.items]

    def eval_tuple(self, node: p.TupleExpr) -> tuple:
        return tuple(self.value_of(item) for item in node.items)

    def eval_dict(self, node: p.DictExpr) -> dict:
        return {key: self.value_of(value) for key, value in zip(node.keys, node.values, strict=True)}

    def eval_call(self, node: p.Call) -> object:
        builtin = FUNCTIONS[node.func]
        args: list[object] = []
        for index, arg in enumerate(node.args):
            if index == 0 and builtin.param_first:
                if isinstance(arg, p.Name):
                    args.append(Param(arg.id, self.lookup(arg.id)))
                else:
                    args.append(Param(None, self.value_of(arg)))
            else:
                args.append(self.value_of(arg))
        kwargs = {key: self.value_of(value) for key, value in node.kwargs}
        if builtin.param_first and not args and "param" in kwargs:
            kwargs["param"] = Param(None, kwargs["param"])
        result = builtin.fn(args, kwargs)
        self.account(result)
        return result

    def eval_unary(self, node: p.Unary) -> object:
        value = self.value_of(node.operand)
        if node.op == "not":
            return not self.truth(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TemplateError(f"Unary '{node.op}' needs a number (got {a_type(value)})")
        return self.check_int(-value if node.op == "-" else +value)

    def eval_boolop(self, node: p.BoolOp) -> object:
        value: object = None
        for item in node.values:
            value = self.value_of(item)
            if (node.op == "and") != self.truth(value):
                return value
        return value

    def eval_ifexp(self, node: p.IfExp) -> object:
        return (
            self.value_of(node.body) if self.truth(self.value_of(node.test)) else self.value_of(node.orelse)
        )

    def eval_subscript(self, node: p.Subscript) -> object:
        container = self.value_of(node.value)
        index = self.value_of(node.index)
        if isinstance(container, dict):
            if isinstance(index, list | dict) or index not in container:
                raise TemplateError(f"Key {index!r} is not in the dict")
            return container[index]
        if isinstance(container, str | list | tuple | range):
            if isinstance(index, bool) or not isinstance(index, int):
                raise TemplateError(f"List and string indexes must be integers (got {a_type(index)})")
            if not -len(container) <= index < len(container):
                raise TemplateError(f"Index {index} is out of range (length {len(container)})")
            return container[index]
        raise TemplateError(f"{a_type(container, True)} cannot be indexed")

    def eval_binop(self, node: p.BinOp) -> object:
        left = self.value_of(node.left)
        right = self.value_of(node.right)
        return self.arith(node.op, left, right)

    def eval_compare(self, node: p.Compare) -> bool:
        left = self.value_of(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.value_of(comparator)
            if not self.compare(op, left, right):
                return False
            left = right
        return True

    # -- operators
    def arith(self, op: str, left: object, right: object) -> object:
        lnum = isinstance(left, int | float) and not isinstance(left, bool)
        rnum = isinstance(right, int | float) and not isinstance(right, bool)
        if lnum and rnum:
            if op in ("/", "//", "%") and right == 0:
                raise TemplateError("Division by zero")
            if op == "+":
                result = left + right  # type: ignore[operator]
            elif op == "-":
                result = left - right  # type: ignore[operator]
            elif op == "*":
                if isinstance(left, int) and isinstance(right, int):
                    self.check_bits(left.bit_length() + right.bit_length())
                result = left * right  # type: ignore[operator]
            elif op == "/":
                result = left / right  # type: ignore[operator]
            elif op == "//":
                result = left // right  # type: ignore[operator]
            else:
                result = left % right  # type: ignore[operator]
            return self.check_int(result)
        if op == "%" and isinstance(left, str):
            raise TemplateError("'%' formatting of strings is not allowed in templates")
        if op == "+" and type(left) is type(right) and isinstance(left, str | list | tuple):
            self.check_size(len(left) + len(right), left)  # type: ignore[arg-type]
            return left + right  # type: ignore[operator]
        if op == "*":
            seq, count = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, str | list | tuple) and isinstance(count, int) and not isinstance(count, bool):
                self.check_size(len(seq) * max(count, 0), seq)
                return seq * count
        raise TemplateError(f"Operator '{op}' cannot be used with {a_type(left)} and {a_type(right)}")

    def compare(self, op: str, left: object, right: object) -> bool:
        if op == "==":
            return bool(left == right)
        if op == "!=":
            return bool(left != right)
        if op in ("is", "is not"):
            if not any(v is None or isinstance(v, bool) for v in (left, right)):
                raise TemplateError("'is' can only compare with None, True or False")
            return (left is right) == (op == "is")
        if op in ("in", "not in"):
            if isinstance(right, SQL):
                right = right.sql
            if isinstance(right, str):
                if not isinstance(left, str):
                    raise TemplateError(f"'in <string>' needs a string on the left (got {a_type(left)})")
            elif not isinstance(right, list | tuple | dict | range):
                raise TemplateError(f"'in' needs a list, string or dict on the right (got {a_type(right)})")
            elif isinstance(right, dict) and isinstance(left, list | dict):
                raise TemplateError("A list or dict cannot be a dict key")
            return (left in right) == (op == "in")
        if isinstance(left, Undefined) or isinstance(right, Undefined):
            raise TemplateError("An undefined parameter cannot be compared: test it with defined() first")
        try:
            if op == "<":
                return bool(left < right)  # type: ignore[operator]
            if op == "<=":
                return bool(left <= right)  # type: ignore[operator]
            if op == ">":
                return bool(left > right)  # type: ignore[operator]
            return bool(left >= right)  # type: ignore[operator]
        except TypeError:
            raise TemplateError(
                f"{a_type(left, True)} and {a_type(right)} cannot be compared with '{op}'"
            ) from None

    # -- limits
    def check_bits(self, bits: int) -> None:
        if bits > MAX_INT_BITS:
            raise TemplateError(f"Integer too large: templates are limited to {MAX_INT_BITS}-bit integers")

    def check_int(self, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            self.check_bits(value.bit_length())
        return value

    def check_size(self, size: int, like: object) -> None:
        limit = MAX_STRING_CHARS if isinstance(like, str) else MAX_ITEMS
        if size > limit:
            what = "Strings" if isinstance(like, str) else "Lists"
            raise TemplateError(
                f"{what} built by templates are limited to {limit} {'characters' if isinstance(like, str) else 'items'}"
            )
        self.work += size
        if self.work > MAX_WORK_CHARS:
            raise TemplateError(
                f"The template does too much work: the limit is {MAX_WORK_CHARS} characters built"
            )

    def account(self, value: object) -> None:
        if isinstance(value, str | list | tuple):
            self.check_size(len(value), value)


_EVALUATORS = {
    p.Const: Renderer.eval_const,
    p.Name: Renderer.eval_name,
    p.ListExpr: Renderer.eval_list,
    p.TupleExpr: Renderer.eval_tuple,
    p.DictExpr: Renderer.eval_dict,
    p.Call: Renderer.eval_call,
    p.Unary: Renderer.eval_unary,
    p.BinOp: Renderer.eval_binop,
    p.BoolOp: Renderer.eval_boolop,
    p.Compare: Renderer.eval_compare,
    p.Subscript: Renderer.eval_subscript,
    p.IfExp: Renderer.eval_ifexp,
}
