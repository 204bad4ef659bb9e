"""``{{ expressions }}`` inside node config, evaluated in a bounded Jinja2 sandbox.

A config string is split into literal text and ``{{ ... }}`` expressions by this module (not by
Jinja's template lexer), so statement blocks (``{% for %}``) are never syntax and there is no
loop to run away. Each expression is parsed with Jinja's expression parser, compiled once, and
cached by its source text.

- A string that is one whole expression (``"{{ $input.value.n + 1 }}"``, whitespace around it
  allowed) yields the native value: number, bool, object, array, null.
- Any other string renders to text; a value that is not a string renders as its JSON text
  (``true``, ``null``, ``{"a":1}``).
- Names: ``$input``, ``$node``, ``$args``, ``$vars``, ``$prev``, ``$execution``, ``$kv``. Jinja
  cannot lex ``$``, so ``$name`` outside string literals is rewritten to the bare ``name``
  before parsing; the bare form also works (the Flowork ``{{vars.NAME}}``). The scope given
  to :meth:`CompiledValue.render` is keyed by the bare names.
- Attribute access on an object prefers its keys (``$input.value.items`` is the key
  ``items``, not the dict method). A missing name, key or index is an error naming it;
  ``default(...)`` and ``is defined`` still work.
- Bounds: the sandbox refuses dunder attributes, mutation and unsafe calls; ``+ * ** %``,
  ``~``, the string methods and filters that can multiply their input refuse to build a value
  larger than ``max_size`` or an integer longer than ``max_int_bits``; iterables are
  materialised up to ``max_items``. Without loops or recursion, this bounds time too.
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from types import BuiltinFunctionType, MappingProxyType
from typing import Any, Final, NoReturn

from jinja2 import filters as jinja_filters
from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.lexer import describe_token
from jinja2.nodes import EvalContext
from jinja2.parser import Parser
from jinja2.runtime import Context, StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.utils import Namespace, missing
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from runnel.model.values import to_json

__all__ = [
    "DEFAULT_MAX_INT_BITS",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_SIZE",
    "SCOPE_NAMES",
    "CompiledValue",
    "ExpressionEngine",
    "ExpressionError",
    "Reference",
    "has_expressions",
]

#: The names an expression may use, each written ``$name`` (the scope keys have no ``$``).
SCOPE_NAMES: Final = ("input", "node", "args", "vars", "prev", "execution", "kv")

#: Largest string (characters) or container (approximate JSON size) an expression may build.
DEFAULT_MAX_SIZE: Final = 8 * 1024 * 1024
#: Largest integer an expression may build, in bits (about 30,000 decimal digits).
DEFAULT_MAX_INT_BITS: Final = 100_000
#: Most items an iterable may yield when an expression turns it into a list.
DEFAULT_MAX_ITEMS: Final = 100_000
#: Longest expression source between one ``{{`` and its ``}}``.
MAX_EXPRESSION_CHARS: Final = 16_384

_GLOBALS: Final[Mapping[str, Any]] = MappingProxyType({"range": safe_range, "dict": dict})
_CONCAT = "__rn_concat"  # internal global for ``~``; users cannot name it (leading underscore)
_STATEMENT = re.compile(r"\{%.*?%\}", re.DOTALL)
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")
_CHEAP_OPERANDS: Final = frozenset(
    {(int, int), (int, float), (float, int), (float, float), (bool, int), (int, bool)}
)
# Jinja filters that turn their first argument into text: a container given to them is
# weighed first, so that str() of a list of many references to one big string is refused.
_STRINGIFYING_FILTERS: Final = (
    "capitalize",
    "e",
    "escape",
    "filesizeformat",
    "forceescape",
    "lower",
    "pprint",
    "string",
    "striptags",
    "title",
    "tojson",
    "trim",
    "truncate",
    "upper",
    "urlencode",
    "wordcount",
    "xmlattr",
)
# Nondeterministic (``random``) or amplifying without a cheap bound (``urlize``'s attributes).
_REMOVED_FILTERS: Final = ("random", "urlize")


class ExpressionError(Exception):
    """An expression that does not parse or fails to evaluate.

    ``expression`` is the source between the braces, ``message`` what went wrong and ``path``
    the config key path (``values.n``, ``cases[1]``) when the value was a nested config.
    """

    def __init__(self, expression: str, message: str, path: str | None = None) -> None:
        super().__init__(expression, message, path)
        self.expression = expression
        self.message = message
        self.path = path

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        shown = self.expression
        if not shown.startswith(("{{", "{%")):
            shown = f"{{{{ {shown} }}}}"
        return f"{where}{self.message} in {shown}"

    def within(self, key: str | int) -> ExpressionError:
        """The same error, one level deeper in a config (``key`` is a dict key or index)."""
        head = f"[{key}]" if isinstance(key, int) else key
        if self.path is None:
            path = head
        elif self.path.startswith("["):
            path = f"{head}{self.path}"
        else:
            path = f"{head}.{self.path}"
        return ExpressionError(self.expression, self.message, path)


@dataclass(frozen=True, slots=True)
class Reference:
    """A use of a scope name: ``$node.fetch.body`` is ``Reference(path, "node", "fetch")``."""

    #: Config key path of the string holding the expression.
    path: str
    #: Scope name without the ``$``.
    root: str
    #: The first key or attribute read from it when it is a constant, else ``None``.
    key: str | None


Renderer = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class CompiledValue:
    """A config value with its expressions compiled; render it once per node run."""

    source: Any
    renderer: Renderer | None = field(default=None, repr=False, compare=False)

    @property
    def is_static(self) -> bool:
        """True when the value holds no expression: ``render`` returns ``source`` itself."""
        return self.renderer is None

    def render(self, scope: Mapping[str, Any]) -> Any:
        """Evaluate every expression against ``scope`` (keys without ``$``)."""
        renderer = self.renderer
        if renderer is None:
            return self.source
        return renderer(scope)


def has_expressions(value: Any) -> bool:
    """Whether a config value holds a ``{{`` anywhere (a cheap test, no parsing)."""
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, Mapping):
        return any(has_expressions(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(has_expressions(item) for item in value)
    return False


# --------------------------------------------------------------------------------------------
# Limits


class _Refused(Exception):
    """A guard refused an operation; becomes an ExpressionError with the expression."""


@dataclass(frozen=True, slots=True)
class _Limits:
    max_size: int
    max_int_bits: int
    max_items: int

    def size(self, size: int, what: str = "result") -> None:
        if size > self.max_size:
            raise _Refused(f"{what} would be larger than the limit of {self.max_size} characters")

    def weigh(self, value: Any, what: str = "value") -> int:
        """Approximate JSON size of ``value``; refuses past ``max_size`` without finishing."""
        total = 0
        budget = self.max_size
        stack = [value]
        while stack:
            item = stack.pop()
            kind = type(item)
            if kind is str or kind is bytes:
                total += len(item) + 2
            elif kind is int:
                total += item.bit_length() // 3 + 1
            elif isinstance(item, str | bytes | bytearray):
                total += len(item) + 2
            elif isinstance(item, Mapping):
                total += 2 + 2 * len(item)
                if total <= budget:
                    stack.extend(item.keys())
                    stack.extend(item.values())
            elif isinstance(item, list | tuple | Set):
                total += 2 + len(item)
                if total <= budget:
                    stack.extend(item)
            else:
                total += 8
            if total > budget:
                raise _Refused(f"{what} is larger than the limit of {budget} characters")
        return total

    def items(self, iterable: Iterable[Any]) -> list[Any]:
        """An iterable as a list, refusing more than ``max_items`` items."""
        if isinstance(iterable, list):
            return iterable
        out: list[Any] = []
        for item in iterable:
            out.append(item)
            if len(out) > self.max_items:
                raise _Refused(f"more items than the limit of {self.max_items}")
        return out

    def int_bits(self, bits: int) -> None:
        if bits > self.max_int_bits:
            raise _Refused(f"integer would be longer than the limit of {self.max_int_bits} bits")


# --------------------------------------------------------------------------------------------
# The sandbox


class _Undefined(StrictUndefined):
    """Fails on any use, with a message naming what is missing."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        hint = self._undefined_hint
        if hint:
            return hint
        name = self._undefined_name
        obj = self._undefined_obj
        if obj is missing:
            shown = f"${name}" if name in SCOPE_NAMES else name
            return f"{shown!r} is undefined"
        if obj is None:
            return f"cannot read {name!r} of null"
        if isinstance(obj, Mapping):
            keys = [str(k) for k in list(obj)[:10]]
            more = ", ..." if len(obj) > 10 else ""
            listed = f"keys: {', '.join(keys)}{more}" if keys else "the object is empty"
            return f"no key {name!r} ({listed})"
        if isinstance(obj, Sequence) and not isinstance(obj, str) and isinstance(name, int):
            return f"index {name} is out of range (length {len(obj)})"
        return f"{_type_name(obj)} has no attribute or key {name!r}"


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def _fail(value: Undefined) -> NoReturn:
    value._fail_with_undefined_error()


class _Context(Context):
    """A context that is cheap to make: the scope is used as it is, never copied."""

    def __init__(self, environment: _Sandbox, scope: Mapping[str, Any]) -> None:
        # Jinja's Context.__init__ copies globals and builds an EvalContext per render; an
        # expression has no blocks and never changes its eval context, so one is shared.
        self.parent = scope  # type: ignore[assignment]
        self.vars = {}
        self.environment = environment
        self.eval_ctx = environment.shared_eval_ctx
        self.exported_vars = set()
        self.name = None
        self.globals_keys = set()
        self.blocks = {}

    def resolve_or_missing(self, key: str) -> Any:
        scope = self.parent
        if key in scope:
            return scope[key]
        return self.environment.globals.get(key, missing)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Immutable sandbox with size guards; see the module docstring."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, limits: _Limits) -> None:
        super().__init__(
            undefined=_Undefined,
            autoescape=False,
            # Constant folding would run guarded filters at compile time and embed their
            # (possibly large) results in the generated code; expressions are tiny anyway.
            optimized=False,
            cache_size=0,
            auto_reload=False,
        )
        self.limits = limits
        self.globals.clear()
        self.globals.update(_GLOBALS)
        self.globals[_CONCAT] = self._concat
        self.shared_eval_ctx = EvalContext(self)
        self._install_filters()

    # -- attribute and item access ----------------------------------------------------------

    def getattr(self, obj: Any, attribute: str) -> Any:
        # JSON objects prefer their keys: ``value.items`` is the key, not dict.items.
        if type(obj) is dict or (type(obj) is not str and isinstance(obj, Mapping)):
            try:
                return obj[attribute]
            except KeyError:
                pass
            if not hasattr(obj, attribute):
                return _Undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        kind = type(obj)
        if kind is dict or (kind is not str and isinstance(obj, Mapping)):
            try:
                return obj[argument]
            except (KeyError, TypeError):
                if isinstance(argument, str) and hasattr(obj, argument):
                    return super().getitem(obj, argument)
                return _Undefined(obj=obj, name=argument)
        if kind is list and type(argument) is int:
            try:
                return obj[argument]
            except IndexError:
                index: Any = argument  # Jinja names items by index too
                return _Undefined(obj=obj, name=index)
        return super().getitem(obj, argument)

    # -- guarded operators ------------------------------------------------------------------

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        # Fast path: arithmetic on floats, and + or % on any numbers, cannot grow unbounded.
        kinds = (type(left), type(right))
        if kinds in _CHEAP_OPERANDS and (operator in "+%" or float in kinds):
            return self.binop_table[operator](left, right)
        limits = self.limits
        if operator == "+":
            if isinstance(left, str | bytes) and isinstance(right, str | bytes):
                limits.size(len(left) + len(right))
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                limits.size(limits.weigh(left) + limits.weigh(right))
            return left + right
        if operator == "*":
            if type(left) is int and type(right) is int:
                limits.int_bits(left.bit_length() + right.bit_length())
            elif isinstance(right, str | bytes | list | tuple) and isinstance(left, int):
                left, right = right, left
            if isinstance(left, str | bytes | list | tuple) and isinstance(right, int):
                unit = len(left) if isinstance(left, str | bytes) else limits.weigh(left)
                limits.size(unit * max(right, 0))
            return left * right
        if operator == "**":
            if type(left) is int and type(right) is int and right > 0 and abs(left) > 1:
                limits.int_bits(right * left.bit_length())
            return left**right
        # "%": only string formatting can grow; numbers pass through.
        if isinstance(left, str | bytes):
            return self._percent(left, right)
        return left % right

    def _percent(self, fmt: str | bytes, args: Any) -> Any:
        text = fmt if isinstance(fmt, str) else fmt.decode("latin-1")
        self.limits.size(len(text) + _spec_widths(text) + self.limits.weigh(args, "arguments"))
        return fmt % args

    def _concat(self, *parts: Any) -> str:
        """``a ~ b``: the text of each part, joined, within the size limit."""
        texts = [self.text(part) for part in parts]
        self.limits.size(sum(len(text) for text in texts))
        return "".join(texts)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes) and isinstance(__obj, BuiltinFunctionType):
            args = __self._check_text_method(owner, __obj.__name__, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def _check_text_method(
        self, text: str | bytes, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, ...]:
        """Refuse a str/bytes method call that would build too much; the args to call with."""
        limits = self.limits
        if name in ("center", "ljust", "rjust", "zfill"):
            width = args[0] if args else kwargs.get("width", 0)
            if isinstance(width, int):
                limits.size(width)
        elif name == "expandtabs":
            size = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(size, int):
                tab = "\t" if isinstance(text, str) else b"\t"
                limits.size(len(text) + text.count(tab) * max(size, 0))  # type: ignore[arg-type]
        elif name == "replace" and len(args) >= 2:
            old, new = args[0], args[1]
            if isinstance(old, str | bytes) and isinstance(new, str | bytes):
                hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
                if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
                    hits = min(hits, args[2])
                limits.size(len(text) + hits * max(len(new) - len(old), 0))
        elif name == "join" and args:
            # Materialised once: an iterator weighed here would be empty for the real call.
            items = limits.items(args[0])
            weight = sum(len(item) if isinstance(item, str | bytes) else 8 for item in items)
            limits.size(weight + len(text) * max(len(items) - 1, 0))
            return (items, *args[1:])
        elif name in ("translate", "maketrans"):
            raise _Refused(f"str.{name} is not available in expressions")
        return args

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__
        limits = self.limits

        def guarded(*args: Any, **kwargs: Any) -> str:
            try:
                specs = [spec for _, _, spec, _ in string.Formatter().parse(fmt) if spec]
            except ValueError:
                specs = []
            if any("{" in spec for spec in specs):
                raise _Refused("nested format specs are not available in expressions")
            widths = sum(int(n) for spec in specs for n in _DIGITS.findall(spec))
            limits.size(len(fmt) + widths + limits.weigh([args, kwargs], "arguments"))
            return str(wrapped(*args, **kwargs))

        return guarded

    # -- text -------------------------------------------------------------------------------

    def text(self, value: Any) -> str:
        """How a value reads inside text: strings as they are, anything else as JSON."""
        kind = type(value)
        if kind is str:
            return value  # type: ignore[no-any-return]
        if kind is int:
            return str(value)
        if value is None:
            return "null"
        if kind is bool:
            return "true" if value else "false"
        if isinstance(value, Undefined):
            if type(value) is Undefined:  # an inline ``if`` without ``else`` that was false
                return ""
            _fail(value)
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        value = self.finish(value)
        return json.dumps(to_json(value), ensure_ascii=False, separators=(",", ":"))

    def finish(self, value: Any) -> Any:
        """A result made plain: lists for tuples and iterators, no Undefined, within limits."""
        self.limits.weigh(value, "result")
        return self._plain(value)

    def _plain(self, value: Any) -> Any:
        kind = type(value)
        if kind is str or kind is int or kind is float or kind is bool or value is None:
            return value
        if isinstance(value, Undefined):
            if type(value) is Undefined:
                return None
            _fail(value)
        if isinstance(value, Markup):
            return str.__str__(value)
        if isinstance(value, str | bytes):
            return value
        if isinstance(value, Mapping):
            return {
                key if isinstance(key, str) else self.text(key): self._plain(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._plain(item) for item in value]
        if isinstance(value, Namespace):
            raise _Refused("a namespace is not a value")
        if callable(value):
            raise _Refused("the expression gives a function, not a value (missing '()'?)")
        if isinstance(value, Iterator | range | Set) or _is_view(value):
            items = self.limits.items(value)
            self.limits.weigh(items, "result")
            return [self._plain(item) for item in items]
        return value

    # -- filters ----------------------------------------------------------------------------

    def _install_filters(self) -> None:
        filters = self.filters
        limits = self.limits
        for name in _REMOVED_FILTERS:
            filters.pop(name, None)
        for name in _STRINGIFYING_FILTERS:
            filters[name] = _weighing(filters[name], limits)

        def center(value: Any, width: int = 80) -> str:
            limits.size(width if isinstance(width, int) else 0)
            return self.text(value).center(width)

        def indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
            text = s if isinstance(s, str) else self.text(s)
            unit = len(width) if isinstance(width, str) else width
            limits.size(len(text) + max(unit, 0) * (text.count("\n") + 1))
            return jinja_filters.do_indent(text, width, first, blank)

        def format_(value: Any, *args: Any, **kwargs: Any) -> str:
            if args and kwargs:
                raise _Refused("format takes positional or keyword arguments, not both")
            return str(self._percent(self.text(value), kwargs or args))

        def join(value: Any, d: str = "", attribute: str | int | None = None) -> str:
            items = limits.items(value)
            if attribute is not None:
                getter = jinja_filters.make_attrgetter(self, attribute)
                items = [getter(item) for item in items]
            texts = [item if isinstance(item, str) else self.text(item) for item in items]
            sep = self.text(d)
            limits.size(sum(len(t) for t in texts) + len(sep) * max(len(texts) - 1, 0))
            return sep.join(texts)

        def replace(s: Any, old: str, new: str, count: int | None = None) -> str:
            text = self.text(s)
            old, new = str(old), str(new)
            hits = text.count(old) if old else len(text) + 1
            if count is not None and count >= 0:
                hits = min(hits, count)
            limits.size(len(text) + hits * max(len(new) - len(old), 0))
            return text.replace(old, new, -1 if count is None else count)

        def wordwrap(
            s: Any,
            width: int = 79,
            break_long_words: bool = True,
            wrapstring: str | None = None,
            break_on_hyphens: bool = True,
        ) -> str:
            text = self.text(s)
            # At most one break per character: a generous but cheap bound.
            limits.size(len(text) * (1 + len(wrapstring or "\n")))
            return jinja_filters.do_wordwrap(
                self, text, width, break_long_words, wrapstring, break_on_hyphens
            )

        def batch(value: Any, linecount: int, fill_with: Any = None) -> list[list[Any]]:
            if linecount < 1:
                raise _Refused("batch needs a size of at least 1")
            if fill_with is not None and linecount > limits.max_items:
                raise _Refused(f"batch size is larger than the limit of {limits.max_items}")
            return list(jinja_filters.do_batch(limits.items(value), linecount, fill_with))

        def slice_(value: Any, slices: int, fill_with: Any = None) -> list[list[Any]]:
            if not 1 <= slices <= limits.max_items:
                raise _Refused(f"slice count must be between 1 and the limit of {limits.max_items}")
            return list(jinja_filters.sync_do_slice(limits.items(value), slices, fill_with))

        def sum_(iterable: Any, attribute: str | int | None = None, start: Any = 0) -> Any:
            items = limits.items(iterable)
            if attribute is not None:
                getter = jinja_filters.make_attrgetter(self, attribute)
                items = [getter(item) for item in items]
            if not isinstance(start, int | float):
                # Summing lists or strings copies the partial result each time.
                limits.size(limits.weigh([start, items]))
            return sum(items, start)

        def to_json_text(value: Any, indent: int | None = None, sort_keys: bool = False) -> str:
            plain = to_json(self.finish(value))
            if indent is None:
                return json.dumps(
                    plain, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys
                )
            limits.size(limits.weigh(plain) * (1 + min(max(indent, 0), 16)))
            return json.dumps(plain, ensure_ascii=False, indent=indent, sort_keys=sort_keys)

        def from_json(value: Any) -> Any:
            if not isinstance(value, str | bytes):
                raise _Refused(f"from_json expects text, got {_type_name(value)}")
            limits.size(len(value), "JSON text")
            try:
                return json.loads(value)
            except ValueError as exc:
                raise _Refused(f"from_json: invalid JSON: {exc}") from None

        filters.update(
            {
                "center": center,
                "indent": indent,
                "format": format_,
                "join": join,
                "replace": replace,
                "wordwrap": wordwrap,
                "batch": batch,
                "slice": slice_,
                "sum": sum_,
                "json": to_json_text,
                "from_json": from_json,
            }
        )


def _weighing(func: Any, limits: _Limits) -> Any:
    """``func`` with its value argument weighed first when it is a container."""
    position = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def weighed(*args: Any, **kwargs: Any) -> Any:
        if len(args) > position and not isinstance(args[position], str | int | float):
            limits.weigh(args[position])
        return func(*args, **kwargs)

    return weighed


def _is_view(value: Any) -> bool:
    return type(value).__name__ in ("dict_keys", "dict_values", "dict_items")


def _spec_widths(fmt: str) -> int:
    total = 0
    for match in _PERCENT_SPEC.finditer(fmt):
        for number in match.groups():
            if number == "*":
                raise _Refused("'*' widths are not available in expressions")
            if number:
                total += int(number)
    return total


# --------------------------------------------------------------------------------------------
# Parsing


def _split(text: str) -> list[str | _Source]:
    """Literal text and ``{{ }}`` sources, in order. Raises _Syntax for an unclosed ``{{``."""
    parts: list[str | _Source] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            if pos < len(text):
                parts.append(text[pos:])
            return parts
        if start > pos:
            parts.append(text[pos:start])
        end = _closing(text, start + 2)
        parts.append(_Source(text[start + 2 : end]))
        pos = end + 2


@dataclass(frozen=True, slots=True)
class _Source:
    text: str


class _Syntax(Exception):
    def __init__(self, expression: str, message: str) -> None:
        super().__init__(message)
        self.expression = expression
        self.message = message


def _closing(text: str, pos: int) -> int:
    """Index of the ``}}`` closing an expression that starts at ``pos``.

    Skips string literals, and braces of dict literals (``{{ {'a': {'b': 1}} }}``), as
    Jinja's own lexer does.
    """
    depth = 0
    quote = ""
    i = pos
    n = len(text)
    while i < n:
        char = text[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]":
            depth = max(depth - 1, 0)
        elif char == "}":
            if depth == 0 and text.startswith("}}", i):
                return i
            depth = max(depth - 1, 0)
        i += 1
    raise _Syntax("{{" + text[pos:], "'{{' is never closed with '}}'")


def _rewrite_dollars(source: str, names: frozenset[str] | None) -> str:
    """``$name`` -> ``name`` outside string literals; a stray ``$`` is a syntax error."""
    if "$" not in source:
        return source
    out: list[str] = []
    quote = ""
    i = 0
    n = len(source)
    while i < n:
        char = source[i]
        if quote:
            out.append(char)
            if char == "\\" and i + 1 < n:
                out.append(source[i + 1])
                i += 2
                continue
            if char == quote:
                quote = ""
            i += 1
            continue
        if char in "'\"":
            quote = char
        elif char == "$":
            end = i + 1
            if end >= n or source[end] not in _IDENT_START:
                raise _Syntax(source, "'$' must be followed by a name such as $input")
            if i > 0 and source[i - 1] in _IDENT_CHARS:
                raise _Syntax(source, f"unexpected '$' at position {i + 1}")
            while end < n and source[end] in _IDENT_CHARS:
                end += 1
            name = source[i + 1 : end]
            if names is not None and name not in names:
                raise _Syntax(source, f"unknown name '${name}'; {_known(names)}")
            out.append(name)
            i = end
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _known(names: frozenset[str]) -> str:
    shown = [f"${name}" for name in SCOPE_NAMES if name in names]
    shown += sorted(f"${name}" for name in names if name not in SCOPE_NAMES)
    return f"names are {', '.join(shown)}"


class _ConcatToCall(NodeTransformer):
    """``a ~ b`` becomes a call of the guarded concatenation (Jinja's own one is not hooked)."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        parts = [self.visit(part) for part in node.nodes]
        return nodes.Call(nodes.Name(_CONCAT, "load"), parts, [], None, None, lineno=node.lineno)


# Node types whose result may be a fresh container holding Undefined, a tuple or an iterator:
# such results are walked and made plain. Other expressions (paths, arithmetic, comparisons)
# return data from the scope or a scalar, which is checked only at its top.
_BUILDERS = (nodes.List, nodes.Tuple, nodes.Dict, nodes.Call, nodes.Filter)


class _Expression:
    """One compiled ``{{ }}``."""

    __slots__ = ("_env", "_fast", "_root", "_walk", "references", "source")

    def __init__(self, env: _Sandbox, source: str, names: frozenset[str] | None) -> None:
        self.source = source
        self._env = env
        stripped = source.strip()
        if not stripped:
            raise _Syntax(source, "empty expression")
        if len(source) > MAX_EXPRESSION_CHARS:
            raise _Syntax(
                stripped[:80] + "...",
                f"expression longer than {MAX_EXPRESSION_CHARS} characters",
            )
        rewritten = _rewrite_dollars(source, names)
        try:
            parser = Parser(env, rewritten, state="variable")
            expr = parser.parse_expression()
            if not parser.stream.eos:
                token = describe_token(parser.stream.current)
                raise _Syntax(stripped, f"unexpected {token!r} after the expression")
        except TemplateSyntaxError as exc:
            message = (exc.message or "").replace("end of template", "end of expression")
            raise _Syntax(stripped, f"syntax error: {message}") from None
        except RecursionError:
            raise _Syntax(stripped, "expression nested too deeply") from None
        self._check_names(expr, stripped, names)
        self.references = _references(expr)
        self._walk = any(True for _ in _find_all(expr, _BUILDERS))
        self._fast = _fast_path(expr, env.limits)
        body = [nodes.Assign(nodes.Name("result", "store"), _ConcatToCall().visit(expr))]
        template = nodes.Template(body, lineno=1)
        template.set_environment(env)
        try:
            # Code generation reports unknown filters and tests.
            self._root = env.from_string(template).root_render_func
        except TemplateSyntaxError as exc:
            raise _Syntax(stripped, exc.message or "syntax error") from None

    @staticmethod
    def _check_names(expr: nodes.Expr, source: str, names: frozenset[str] | None) -> None:
        if names is None:
            return
        for node in _find_all(expr, nodes.Name):
            if node.name not in names and node.name not in _GLOBALS:
                raise _Syntax(source, f"unknown name {node.name!r}; {_known(names)}")

    def _run(self, scope: Mapping[str, Any]) -> Any:
        fast = self._fast
        if fast is not None:
            try:
                return fast(scope)
            except Exception:  # anything unusual: the sandbox decides, below
                pass
        context = _Context(self._env, scope)
        for _ in self._root(context):
            pass
        return context.vars["result"]

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        """The native value of the expression."""
        try:
            value = self._run(scope)
            if self._walk or isinstance(value, Undefined):
                return self._env.finish(value)
            if callable(value):
                raise _Refused("the expression gives a function, not a value (missing '()'?)")
            return value
        except Exception as exc:
            raise self._error(exc) from exc

    def text(self, scope: Mapping[str, Any]) -> str:
        """The expression's value as text (see ``_Sandbox.text``)."""
        try:
            return self._env.text(self._run(scope))
        except Exception as exc:
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> ExpressionError:
        if isinstance(exc, ExpressionError):
            return exc
        if isinstance(exc, _Refused):
            message = str(exc)
        elif isinstance(exc, RecursionError):
            message = "value nested too deeply"
        elif isinstance(exc, ZeroDivisionError):
            message = "division by zero"
        else:
            message = str(exc) or type(exc).__name__
        return ExpressionError(self.source.strip(), message)


def _find_all(
    expr: nodes.Node, types: type[nodes.Node] | tuple[type[nodes.Node], ...]
) -> Iterator[Any]:
    """Like ``Node.find_all``, but including the node itself."""
    if isinstance(expr, types):
        yield expr
    yield from expr.find_all(types)


def _references(expr: nodes.Expr) -> tuple[tuple[str, str | None], ...]:
    found: list[tuple[str, str | None]] = []
    bases: set[int] = set()
    for node in _find_all(expr, (nodes.Getattr, nodes.Getitem)):
        key: str | None = None
        if isinstance(node, nodes.Getattr):
            base, key = node.node, node.attr
        elif isinstance(node, nodes.Getitem):
            base = node.node
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                key = node.arg.value
        else:  # pragma: no cover - find_all yields only the two
            continue
        if isinstance(base, nodes.Name):
            bases.add(id(base))
            found.append((base.name, key))
    for name in _find_all(expr, nodes.Name):
        if id(name) not in bases and name.name not in _GLOBALS:
            found.append((name.name, None))
    return tuple(dict.fromkeys(found))


# --------------------------------------------------------------------------------------------
# The fast path of simple expressions


class _Slow(Exception):
    """The fast path met a case it does not handle: the compiled sandbox code decides."""


Fast = Callable[[Mapping[str, Any]], Any]

_NUMBERS: Final = frozenset({int, float})
_SCALARS: Final = frozenset({int, float, str, bool, type(None)})
_PLAIN_BINOPS: Final[Mapping[type[nodes.Node], Callable[[Any, Any], Any]]] = {
    nodes.Sub: lambda a, b: a - b,
    nodes.Div: lambda a, b: a / b,
    nodes.FloorDiv: lambda a, b: a // b,
}
_COMPARISONS: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lteq": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gteq": lambda a, b: a >= b,
}


def _fast_path(expr: nodes.Expr, limits: _Limits) -> Fast | None:
    """A plain-Python evaluator of ``expr`` when it is made only of names, constant keys and
    indexes, arithmetic, comparisons, ``and``/``or``/``not`` and ``a if c else b``; else None.

    It gives exactly what the sandbox's compiled code gives, or raises (``_Slow`` or any
    error) so that the compiled code runs instead: it only takes the cases whose outcome is
    plain (an object's existing key, an in-range list index, numbers within the limits) and
    leaves every other one, errors included, to the sandbox. Expressions have no side
    effects, so running the sandbox after a fast path gave up changes nothing.
    """
    try:
        return _fast(expr, limits)
    except (_Slow, RecursionError):
        return None


def _fast(expr: nodes.Node, limits: _Limits) -> Fast:
    if isinstance(expr, nodes.Name) and expr.ctx == "load":
        name = expr.name

        def load(scope: Mapping[str, Any]) -> Any:
            if name in scope:
                return scope[name]
            raise _Slow

        return load
    if isinstance(expr, nodes.Const):
        value = expr.value
        if type(value) not in _SCALARS:
            raise _Slow
        return lambda scope: value
    if isinstance(expr, nodes.Getattr) and expr.ctx == "load":
        return _fast_key(_fast(expr.node, limits), expr.attr)
    if isinstance(expr, nodes.Getitem) and expr.ctx == "load":
        arg = expr.arg
        if not isinstance(arg, nodes.Const) or type(arg.value) not in (str, int):
            raise _Slow
        return _fast_key(_fast(expr.node, limits), arg.value)
    if isinstance(expr, nodes.Add):
        return _fast_add(_fast(expr.left, limits), _fast(expr.right, limits), limits)
    if isinstance(expr, nodes.Mul):
        return _fast_mul(_fast(expr.left, limits), _fast(expr.right, limits), limits)
    if isinstance(expr, nodes.Mod):
        return _fast_numeric(_fast(expr.left, limits), _fast(expr.right, limits), _mod)
    plain = _PLAIN_BINOPS.get(type(expr))
    if plain is not None:
        assert isinstance(expr, nodes.BinExpr)
        return _fast_numeric(_fast(expr.left, limits), _fast(expr.right, limits), plain)
    if isinstance(expr, nodes.Neg):
        operand = _fast(expr.node, limits)

        def neg(scope: Mapping[str, Any]) -> Any:
            value = operand(scope)
            if type(value) in _NUMBERS:
                return -value
            raise _Slow

        return neg
    if isinstance(expr, nodes.Compare) and len(expr.ops) == 1:
        compare = _COMPARISONS.get(expr.ops[0].op)
        if compare is None:
            raise _Slow
        left, right = _fast(expr.expr, limits), _fast(expr.ops[0].expr, limits)
        return lambda scope: compare(left(scope), right(scope))
    if isinstance(expr, nodes.And):
        left, right = _fast(expr.left, limits), _fast(expr.right, limits)
        return lambda scope: left(scope) and right(scope)
    if isinstance(expr, nodes.Or):
        left, right = _fast(expr.left, limits), _fast(expr.right, limits)
        return lambda scope: left(scope) or right(scope)
    if isinstance(expr, nodes.Not):
        operand = _fast(expr.node, limits)
        return lambda scope: not operand(scope)
    if isinstance(expr, nodes.CondExpr) and expr.expr2 is not None:
        test = _fast(expr.test, limits)
        then, otherwise = _fast(expr.expr1, limits), _fast(expr.expr2, limits)
        return lambda scope: then(scope) if test(scope) else otherwise(scope)
    raise _Slow


def _fast_key(base: Fast, key: str | int) -> Fast:
    """``base.key`` / ``base[key]``: an existing key of a dict, an index within a list."""

    def read(scope: Mapping[str, Any]) -> Any:
        obj = base(scope)
        kind = type(obj)
        if kind is dict:
            return obj[key]  # KeyError: the sandbox's Undefined and its message
        if kind is list and type(key) is int:
            return obj[key]
        raise _Slow

    return read


def _fast_add(left: Fast, right: Fast, limits: _Limits) -> Fast:
    max_size = limits.max_size

    def add(scope: Mapping[str, Any]) -> Any:
        a = left(scope)
        b = right(scope)
        kind = type(a)
        if kind in _NUMBERS and type(b) in _NUMBERS:
            return a + b
        if kind is str and type(b) is str and len(a) + len(b) <= max_size:
            return a + b
        raise _Slow

    return add


def _fast_mul(left: Fast, right: Fast, limits: _Limits) -> Fast:
    max_int_bits = limits.max_int_bits

    def mul(scope: Mapping[str, Any]) -> Any:
        a = left(scope)
        b = right(scope)
        kinds = (type(a), type(b))
        if kinds == (int, int):
            if a.bit_length() + b.bit_length() > max_int_bits:
                raise _Slow
            return a * b
        if float in kinds and kinds[0] in _NUMBERS and kinds[1] in _NUMBERS:
            return a * b
        raise _Slow

    return mul


def _mod(a: Any, b: Any) -> Any:
    return a % b


def _fast_numeric(left: Fast, right: Fast, operation: Callable[[Any, Any], Any]) -> Fast:
    def numeric(scope: Mapping[str, Any]) -> Any:
        a = left(scope)
        b = right(scope)
        if type(a) in _NUMBERS and type(b) in _NUMBERS:
            return operation(a, b)
        raise _Slow

    return numeric


class _Template:
    """A compiled config string: literal text and expressions."""

    __slots__ = ("_limits", "_parts", "_whole", "expressions")

    def __init__(self, parts: list[str | _Expression], limits: _Limits) -> None:
        self._parts = tuple(parts)
        self._limits = limits
        self.expressions = tuple(part for part in parts if isinstance(part, _Expression))
        texts = [part for part in parts if isinstance(part, str)]
        whole = len(self.expressions) == 1 and all(not text.strip() for text in texts)
        self._whole = self.expressions[0] if whole else None

    def render(self, scope: Mapping[str, Any]) -> Any:
        whole = self._whole
        if whole is not None:
            return whole.evaluate(scope)
        pieces = [part if type(part) is str else part.text(scope) for part in self._parts]  # type: ignore[union-attr]
        size = sum(len(piece) for piece in pieces)
        if size > self._limits.max_size:
            first = self.expressions[0]
            raise ExpressionError(
                first.source.strip(),
                f"rendered text would be larger than the limit of {self._limits.max_size}"
                " characters",
            )
        return "".join(pieces)


@dataclass(frozen=True, slots=True)
class _Failure:
    expression: str
    message: str


# --------------------------------------------------------------------------------------------
# The engine


class ExpressionEngine:
    """Compiles config values once (an LRU keyed by string) and renders them per node run.

    ``names`` are the scope names an expression may use (``None`` allows any name, for hosts
    that put more in the scope). One engine is shared by every execution of a process.
    """

    def __init__(
        self,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        max_int_bits: int = DEFAULT_MAX_INT_BITS,
        max_items: int = DEFAULT_MAX_ITEMS,
        names: Iterable[str] | None = SCOPE_NAMES,
        cache_size: int = 4096,
    ) -> None:
        self.limits = _Limits(max_size, max_int_bits, max_items)
        self.names = None if names is None else frozenset(names)
        self._env = _Sandbox(self.limits)
        self._compile_text = functools.lru_cache(maxsize=cache_size)(self._compile_uncached)

    def compile(self, value: Any) -> CompiledValue:
        """Compile every expression in ``value`` (dicts and lists walked).

        Raises ExpressionError (with ``path``) for the first expression that does not parse.
        """
        renderer = self._renderer(value)
        return CompiledValue(value, renderer)

    def render(self, value: Any, scope: Mapping[str, Any]) -> Any:
        """Compile (cached) and render in one step."""
        return self.compile(value).render(scope)

    def check(self, value: Any) -> list[tuple[str, str]]:
        """``(path, message)`` for every expression in ``value`` that does not compile."""
        problems: list[tuple[str, str]] = []
        for path, text in _strings(value, ""):
            compiled = self._compile_text(text)
            if isinstance(compiled, _Failure):
                problems.append((path, str(ExpressionError(compiled.expression, compiled.message))))
        return problems

    def find_references(self, value: Any) -> list[Reference]:
        """Every use of a scope name in ``value``'s expressions (that compile)."""
        found: list[Reference] = []
        for path, text in _strings(value, ""):
            compiled = self._compile_text(text)
            if isinstance(compiled, _Template):
                for expression in compiled.expressions:
                    for root, key in expression.references:
                        found.append(Reference(path, root, key))
        return found

    def cache_info(self) -> Any:
        """The compile cache's hits, misses and size (``functools`` cache info)."""
        return self._compile_text.cache_info()

    # -- compiling --------------------------------------------------------------------------

    def _renderer(self, value: Any) -> Renderer | None:
        if isinstance(value, str):
            if "{{" not in value:
                if "{%" in value:
                    _refuse_statements(value)
                return None
            compiled = self._compile_text(value)
            if isinstance(compiled, _Failure):
                raise ExpressionError(compiled.expression, compiled.message)
            whole = compiled._whole
            # A lone expression renders to its value: hand out its ``evaluate`` itself.
            return whole.evaluate if whole is not None else compiled.render
        if isinstance(value, Mapping):
            return self._mapping_renderer(value)
        if isinstance(value, list | tuple):
            return self._list_renderer(value)
        return None

    def _mapping_renderer(self, value: Mapping[str, Any]) -> Renderer | None:
        dynamic: list[tuple[Any, Renderer]] = []
        for key, item in value.items():
            try:
                renderer = self._renderer(item)
            except ExpressionError as exc:
                raise exc.within(key) from None
            if renderer is not None:
                dynamic.append((key, renderer))
        if not dynamic:
            return None
        if len(dynamic) == 1:
            only_key, only_renderer = dynamic[0]

            def render_one(scope: Mapping[str, Any]) -> dict[Any, Any]:
                # The common case (one key holds expressions), without the loop.
                out = dict(value)
                try:
                    out[only_key] = only_renderer(scope)
                except ExpressionError as exc:
                    raise exc.within(only_key) from None
                return out

            return render_one

        def render(scope: Mapping[str, Any]) -> dict[Any, Any]:
            # Copy (C speed, keeps key order), then replace only what holds expressions.
            out = dict(value)
            for key, renderer in dynamic:
                try:
                    out[key] = renderer(scope)
                except ExpressionError as exc:
                    raise exc.within(key) from None
            return out

        return render

    def _list_renderer(self, value: Sequence[Any]) -> Renderer | None:
        dynamic: list[tuple[int, Renderer]] = []
        for index, item in enumerate(value):
            try:
                renderer = self._renderer(item)
            except ExpressionError as exc:
                raise exc.within(index) from None
            if renderer is not None:
                dynamic.append((index, renderer))
        if not dynamic:
            return None

        def render(scope: Mapping[str, Any]) -> list[Any]:
            out = list(value)
            for index, renderer in dynamic:
                try:
                    out[index] = renderer(scope)
                except ExpressionError as exc:
                    raise exc.within(index) from None
            return out

        return render

    def _compile_uncached(self, text: str) -> _Template | _Failure:
        try:
            raw = _split(text)
            parts: list[str | _Expression] = []
            for part in raw:
                if isinstance(part, str):
                    if "{%" in part:
                        _refuse_statements(part)
                    parts.append(part)
                else:
                    parts.append(_Expression(self._env, part.text, self.names))
            return _Template(parts, self.limits)
        except _Syntax as exc:
            return _Failure(exc.expression.strip(), exc.message)
        except ExpressionError as exc:
            return _Failure(exc.expression, exc.message)


def _refuse_statements(text: str) -> None:
    match = _STATEMENT.search(text)
    if match is not None:
        raise ExpressionError(
            match.group(0),
            "statement blocks {% ... %} are not supported; use an expression such as"
            " {{ a if condition else b }}",
        )


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, string) for every string in ``value`` that may hold an expression or statement."""
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
