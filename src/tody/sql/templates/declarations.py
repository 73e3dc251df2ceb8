"""`params()`: the parameters a template declares through typed functions, found without rendering.

Every branch is walked (a parameter used only under `{% if %}` is still declared). Arguments are
read only when they are literal constants; anything computed is reported as unknown (None).
"""

from __future__ import annotations

from dataclasses import fields, replace

from tody.sql.templates import nodes as p
from tody.sql.templates.functions import TYPED_FUNCTIONS, TYPED_SIGNATURE
from tody.sql.templates.types import SCALAR_TYPES, ParamSpec, canonical

_UNKNOWN = object()


def constant(node: object) -> object:
    """The value of a literal expression (numbers, strings, lists/tuples of them), else _UNKNOWN."""
    if isinstance(node, p.Const):
        return node.value
    if isinstance(node, p.Unary) and node.op in ("-", "+"):
        value = constant(node.operand)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value if node.op == "-" else value
        return _UNKNOWN
    if isinstance(node, p.ListExpr | p.TupleExpr):
        items = tuple(constant(item) for item in node.items)
        return _UNKNOWN if any(item is _UNKNOWN for item in items) else items
    return _UNKNOWN


def declaration(call: p.Call) -> ParamSpec | None:
    """The ParamSpec of one typed-function call, or None when its first argument is not a bare name."""
    if call.func not in TYPED_FUNCTIONS or not call.args or not isinstance(call.args[0], p.Name):
        return None
    args = list(call.args)
    kwargs = dict(call.kwargs)
    type_name = canonical(call.func)
    if call.func == "Array":
        element = constant(kwargs.pop("type")) if "type" in kwargs else None
        second = constant(args[1]) if len(args) > 1 else None
        if element is None and isinstance(second, str) and canonical(second) in SCALAR_TYPES:
            element = second
            del args[1]
        element = element if isinstance(element, str) and canonical(element) in SCALAR_TYPES else "String"
        type_name = f"Array({canonical(element)})"
    found: dict[str, object] = {}
    for name, node in zip(TYPED_SIGNATURE, args, strict=False):
        found[name] = constant(node)
    for key, node in kwargs.items():
        found[key] = constant(node)

    def get(key: str, kind: type | tuple[type, ...]) -> object:
        value = found.get(key, _UNKNOWN)
        return value if value is not _UNKNOWN and isinstance(value, kind) else None

    enum = get("enum", tuple)
    return ParamSpec(
        name=call.args[0].id,
        type=type_name,
        default=get("default", (str, int, float, bool, tuple)),
        required=get("required", bool) is True,
        description=get("description", str),  # type: ignore[arg-type]
        example=get("example", (str, int, float, bool, tuple)),
        format=get("format", str),  # type: ignore[arg-type]
        enum=enum,  # type: ignore[arg-type]
    )


def declared_params(template: p.Template) -> list[ParamSpec]:
    """Deduplicated by name in first-appearance order; later declarations fill fields left empty."""
    specs: dict[str, ParamSpec] = {}
    for node in p.expressions(template.body):
        if not isinstance(node, p.Call):
            continue
        spec = declaration(node)
        if spec is None:
            continue
        seen = specs.get(spec.name)
        if seen is None:
            specs[spec.name] = spec
            continue
        updates = {
            f.name: getattr(spec, f.name)
            for f in fields(ParamSpec)
            if f.name not in ("name", "type") and getattr(seen, f.name) in (None, False)
        }
        specs[spec.name] = replace(seen, **updates)
    return list(specs.values())
