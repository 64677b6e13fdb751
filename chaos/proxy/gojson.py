"""JSON as Toxiproxy's Go code reads and writes it, so clients see the same
bodies and the same error texts.

Reading is Go's ``json.NewDecoder(body).Decode(&target)``: the first value
of the body counts (anything after it is ignored), a syntax error is worded
by Go's scanner, and decoding into a struct matches keys case-insensitively,
leaves fields given ``null`` alone, keeps going after a value of the wrong
type and reports the first such error. Python's json parser does the
parsing; the Go scanner is replayed only to word an error.

Writing is ``json.Marshal``: compact, map keys sorted, ``<``, ``>`` and
``&`` escaped, float32 values in their shortest form.
"""

from __future__ import annotations

import json
import math
import struct
from decimal import Decimal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_SPACE = b" \t\r\n"
_EOF = "unexpected EOF"
MAX_DEPTH = 10000  # Go's scanner limit


class GoJSONError(ValueError):
    """A decode error with Go's message (e.g. ``unexpected EOF``)."""


class _Int(int):
    """An integer literal that remembers its text (Go words range errors with it)."""

    text: str


class _Float(float):
    text: str


def _int(text: str) -> _Int:
    value = _Int(text)
    value.text = text
    return value


def _float(text: str) -> _Float:
    value = _Float(text)
    value.text = text
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are not JSON


_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_no_constant)


def decode(body: bytes) -> Any:
    """The first JSON value in ``body``, as Go's Decoder reads it."""
    start = 0
    while start < len(body) and body[start] in _SPACE:
        start += 1
    if start == len(body):
        raise GoJSONError("EOF")
    text = body.decode("utf-8", errors="replace")  # Go turns invalid UTF-8 into U+FFFD
    if len(text) != len(body):  # multi-byte characters: find the start again in the text
        start = len(text) - len(text.lstrip(" \t\r\n"))
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        raise GoJSONError(syntax_error(body) or "exceeded max depth") from None
    if isinstance(value, (_Int, _Float)):  # Python stops a number where Go's scanner would fail ("1.")
        problem = syntax_error(body)
        if problem:
            raise GoJSONError(problem)
    return value


# ------------------------------------------------------------ Go's scanner, for its words


def _quote_char(c: int) -> str:
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    special = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 0x5C: "\\\\"}
    if c in special:
        return f"'{special[c]}'"
    if c < 0x20 or c == 0x7F:
        return f"'\\x{c:02x}'"
    if 0x80 <= c <= 0xA0 or c == 0xAD:
        return f"'\\u{c:04x}'"
    return f"'{chr(c)}'"


def syntax_error(body: bytes) -> str | None:
    """Go's message for the first error in ``body``'s first value ("unexpected
    EOF" if it ends early); None when that value is well-formed."""
    stack: list[str] = []  # "obj_key", "obj_value", "array"
    i, n = 0, len(body)

    def err(c: int, context: str) -> str:
        return f"invalid character {_quote_char(c)} {context}"

    def skip_space(j: int) -> int:
        while j < n and body[j] in _SPACE:
            j += 1
        return j

    def literal(j: int, word: bytes) -> tuple[int, str | None]:
        for k in range(1, len(word)):
            if j + k >= n:
                return n, _EOF
            if body[j + k] != word[k]:
                return j + k, err(body[j + k], f"in literal {word.decode()} (expecting {_quote_char(word[k])})")
        return j + len(word), None

    def number(j: int) -> tuple[int, str | None]:
        if body[j] == 0x2D:  # '-'
            j += 1
            if j >= n:
                return n, _EOF
            if not 0x30 <= body[j] <= 0x39:
                return j, err(body[j], "in numeric literal")
        if body[j] == 0x30:
            j += 1
        else:
            while j < n and 0x30 <= body[j] <= 0x39:
                j += 1
        if j < n and body[j] == 0x2E:  # '.'
            j += 1
            if j >= n:
                return n, _EOF
            if not 0x30 <= body[j] <= 0x39:
                return j, err(body[j], "after decimal point in numeric literal")
            while j < n and 0x30 <= body[j] <= 0x39:
                j += 1
        if j < n and body[j] in b"eE":
            j += 1
            if j < n and body[j] in b"+-":
                j += 1
            if j >= n:
                return n, _EOF
            if not 0x30 <= body[j] <= 0x39:
                return j, err(body[j], "in exponent of numeric literal")
            while j < n and 0x30 <= body[j] <= 0x39:
                j += 1
        return j, None

    def string(j: int) -> tuple[int, str | None]:
        j += 1
        while j < n:
            c = body[j]
            if c == 0x22:
                return j + 1, None
            if c == 0x5C:
                j += 1
                if j >= n:
                    return n, _EOF
                e = body[j]
                if e == 0x75:  # 'u'
                    for _ in range(4):
                        j += 1
                        if j >= n:
                            return n, _EOF
                        if body[j] not in b"0123456789abcdefABCDEF":
                            return j, err(body[j], "in \\u hexadecimal character escape")
                elif e not in b'bfnrt\\/"':
                    return j, err(e, "in string escape code")
            elif c < 0x20:
                return j, err(c, "in string literal")
            j += 1
        return n, _EOF

    def after_value(j: int) -> tuple[int, str | None, bool]:
        """Past one complete value; True when the top-level value is done."""
        while True:
            if not stack:
                return j, None, True
            j = skip_space(j)
            if j >= n:
                return n, _EOF, False
            c, top = body[j], stack[-1]
            if top == "obj_key":
                if c != 0x3A:
                    return j, err(c, "after object key"), False
                stack[-1] = "obj_value"
                return j + 1, None, False
            if top == "obj_value":
                if c == 0x2C:
                    stack[-1] = "obj_key"
                    j = skip_space(j + 1)
                    if j >= n:
                        return n, _EOF, False
                    if body[j] != 0x22:
                        return j, err(body[j], "looking for beginning of object key string"), False
                    j, problem = string(j)
                    if problem:
                        return j, problem, False
                    continue  # a key is a value: now expect ':'
                if c == 0x7D:
                    stack.pop()
                    j += 1
                    continue
                return j, err(c, "after object key:value pair"), False
            if c == 0x2C:
                return j + 1, None, False
            if c == 0x5D:
                stack.pop()
                j += 1
                continue
            return j, err(c, "after array element"), False

    while True:
        i = skip_space(i)
        if i >= n:
            return "unexpected EOF" if stack or i > 0 else "EOF"
        c = body[i]
        if c == 0x7B:  # '{'
            if len(stack) >= MAX_DEPTH:
                return "exceeded max depth"
            i = skip_space(i + 1)
            if i >= n:
                return "unexpected EOF"
            if body[i] == 0x7D:
                i += 1
            else:
                if body[i] != 0x22:
                    return err(body[i], "looking for beginning of object key string")
                stack.append("obj_key")
                i, problem = string(i)
                if problem:
                    return problem
        elif c == 0x5B:  # '['
            if len(stack) >= MAX_DEPTH:
                return "exceeded max depth"
            i = skip_space(i + 1)
            if i >= n:
                return "unexpected EOF"
            if body[i] == 0x5D:
                i += 1
            else:
                stack.append("array")
                continue
        elif c == 0x22:
            i, problem = string(i)
            if problem:
                return problem
        elif c == 0x2D or 0x30 <= c <= 0x39:
            i, problem = number(i)
            if problem:
                return problem
        elif c in b"tfn":
            i, problem = literal(i, {0x74: b"true", 0x66: b"false", 0x6E: b"null"}[c])
            if problem:
                return problem
        else:
            return err(c, "looking for beginning of value")
        if i >= n and stack:
            return "unexpected EOF"
        i, problem, done = after_value(i)
        if problem:
            return problem
        if done:
            return None
        if i >= n:
            return _EOF


# ------------------------------------------------------------ decoding into Go structs


@dataclass(frozen=True)
class Field:
    """A struct field: its JSON name and Go kind ("string", "bool", "int64",
    "int", "float32", "*bool", or a nested :class:`Struct`)."""

    json: str
    kind: str | Struct
    nullable: bool = False  # a pointer or interface: null sets it to nil (reported as None)


@dataclass(frozen=True)
class Struct:
    name: str  # Go's Type.Name(): "Proxy"; "" for an anonymous struct
    type: str  # Go's Type.String(): "toxiproxy.Proxy"
    fields: tuple[Field, ...] = ()
    open: bool = False  # fields are not decoded (an empty struct: any object fits)
    by_name: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({f.json: f for f in self.fields})

    def find(self, key: str) -> Field | None:
        exact = self.by_name.get(key)
        if exact is not None:
            return exact
        folded = _fold(key)
        for f in self.fields:  # Go prefers an exact match, then any case-insensitive one
            if _fold(f.json) == folded:
                return f
        return None


def _fold(text: str) -> str:
    return text.replace("\u212a", "k").replace("\u017f", "s").lower()


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


_I64 = (-(1 << 63), (1 << 63) - 1)
_F32_MAX = 3.4028234663852886e38


def to_float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


class _Decoding:
    def __init__(self) -> None:
        self.error: str | None = None

    def fail(self, value: str, gotype: str, struct_name: str | None, path: list[str]) -> None:
        if self.error is not None:
            return
        if struct_name is None:
            self.error = f"json: cannot unmarshal {value} into Go value of type {gotype}"
        else:
            self.error = (f"json: cannot unmarshal {value} into Go struct field "
                          f"{struct_name}.{'.'.join(path)} of type {gotype}")

    def scalar(self, value: Any, kind: str, struct_name: str | None, path: list[str]) -> Any:
        """The decoded value, or None when it does not fit (the error is kept)."""
        gotype = kind.lstrip("*")
        if gotype == "string":
            if isinstance(value, str):
                return value
        elif gotype == "bool":
            if isinstance(value, bool):
                return value
        elif gotype in ("int64", "int"):
            if isinstance(value, int) and not isinstance(value, bool):
                if _I64[0] <= value <= _I64[1]:
                    return int(value)
                self.fail(f"number {getattr(value, 'text', value)}", gotype, struct_name, path)
                return None
            if isinstance(value, float):
                self.fail(f"number {getattr(value, 'text', value)}", gotype, struct_name, path)
                return None
        elif gotype == "float32":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                number = float(value)
                if math.isfinite(number) and abs(number) <= _F32_MAX:
                    return to_float32(number)
                self.fail(f"number {getattr(value, 'text', value)}", gotype, struct_name, path)
                return None
        self.fail(_kind_of(value), gotype, struct_name, path)
        return None

    def struct(self, value: Any, shape: Struct, outer_name: str | None, path: list[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(_kind_of(value), shape.type, outer_name, path)
            return None
        out: dict[str, Any] = {}
        if shape.open:
            return out
        for key, item in value.items():
            f = shape.find(key)
            if f is None:
                continue
            where = [*path, f.json]
            if item is None:
                if f.nullable:
                    out[f.json] = None
                continue  # null leaves a value field alone
            if isinstance(f.kind, Struct):
                decoded = self.struct(item, f.kind, shape.name, where)
                if decoded is not None:
                    out[f.json] = decoded
                continue
            decoded = self.scalar(item, f.kind, shape.name, where)
            if decoded is not None:
                out[f.json] = decoded
        return out


def into_struct(value: Any, shape: Struct) -> tuple[dict[str, Any], str | None]:
    """Decode a JSON value into ``shape``: (fields that were set, Go's first type error)."""
    decoding = _Decoding()
    out = decoding.struct(value, shape, None, [])
    return out or {}, decoding.error


def into_struct_list(value: Any, shape: Struct) -> tuple[list[dict[str, Any]], str | None]:
    """Decode a JSON array into ``[]shape``."""
    decoding = _Decoding()
    if value is None:
        return [], None
    if not isinstance(value, list):
        decoding.fail(_kind_of(value), f"[]{shape.type}", None, [])
        return [], decoding.error
    items: list[dict[str, Any]] = []
    for item in value:
        if item is None:
            items.append({})
            continue
        items.append(decoding.struct(item, shape, None, []) or {})
    return items, decoding.error


# ------------------------------------------------------------ writing


class Float32(float):
    """A float32 field: written in its shortest float32 form (0.1, not 0.10000000149)."""


def _float32_text(value: float) -> str:
    """strconv.AppendFloat(f, 'f' or 'e', -1, 32) as Go's encoder uses it."""
    if value == 0:
        return "0"
    shortest = f"{value:.8e}"
    for digits in range(9):
        candidate = f"{value:.{digits}e}"
        if to_float32(float(candidate)) == value:
            shortest = candidate
            break
    if 1e-6 <= abs(value) < 1e21:
        return format(Decimal(shortest), "f")
    mantissa, _, exponent = shortest.partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    sign, digits_ = exponent[0], exponent[1:].lstrip("0") or "0"
    if sign == "-":
        return f"{mantissa}e-{digits_}"
    return f"{mantissa}e+{digits_.zfill(2)}"


_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _string(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    if any(c in out for c in _ESCAPES):
        for c, escaped in _ESCAPES.items():
            out = out.replace(c, escaped)
    return out


def dumps(value: Any) -> str:
    """``json.Marshal``'s text for ``value``."""
    parts: list[str] = []
    _write(value, parts.append)
    return "".join(parts)


def _write(value: Any, out: Callable[[str], None]) -> None:
    if value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, str):
        out(_string(value))
    elif isinstance(value, Float32):
        out(_float32_text(float(value)))
    elif isinstance(value, int):
        out(str(int(value)))
    elif isinstance(value, float):
        out(repr(value))
    elif isinstance(value, dict):
        out("{")
        for i, key in enumerate(value):
            if i:
                out(",")
            out(_string(key))
            out(":")
            _write(value[key], out)
        out("}")
    elif isinstance(value, (list, tuple)):
        out("[")
        for i, item in enumerate(value):
            if i:
                out(",")
            _write(item, out)
        out("]")
    else:  # pragma: no cover - only the shapes above are written
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def sorted_map(mapping: dict[str, Any]) -> dict[str, Any]:
    """A Go map as Marshal writes it: keys in byte order."""
    return {key: mapping[key] for key in sorted(mapping)}
