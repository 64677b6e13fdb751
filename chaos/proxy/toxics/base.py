"""What every toxic is: typed attributes plus one pipeline stage.

A toxic type is a subclass of :class:`Toxic` that declares its attributes
(name -> default, all non-negative numbers) and implements ``pipe``. The
same toxic object serves every connection; per-connection state lives on the
:class:`Stub` it is given (``stub.state``), as in Toxiproxy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from chaos.proxy.link import Stub


class InvalidAttributes(ValueError):
    """An attribute is missing its type, negative or out of range (HTTP 400)."""


class Toxic:
    type_name: ClassVar[str] = ""
    # attribute -> default; the type of the default (int or float) is the type accepted
    attributes: ClassVar[dict[str, int | float]] = {}
    # bytes this stage may hold per connection before the reader is paused
    buffer_hint: ClassVar[int] = 256 * 1024

    def __init__(self, **values: int | float) -> None:
        for key, default in self.attributes.items():
            setattr(self, key, values.get(key, default))

    @classmethod
    def from_attributes(cls, given: Any, base: dict[str, Any] | None = None) -> Toxic:
        """Build from a JSON object merged onto ``base`` (missing keys keep their value)."""
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise InvalidAttributes("attributes must be an object")
        merged: dict[str, Any] = dict(base or {})
        for key, default in cls.attributes.items():
            if key not in given:
                continue
            value = given[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidAttributes(f"attribute {key!r} of {cls.type_name} must be a number")
            if isinstance(default, int) and isinstance(value, float):
                if not value.is_integer():
                    raise InvalidAttributes(f"attribute {key!r} of {cls.type_name} must be an integer")
                value = int(value)
            if value < 0:
                raise InvalidAttributes(f"attribute {key!r} of {cls.type_name} must not be negative")
            merged[key] = value
        toxic = cls(**merged)
        toxic.validate()
        return toxic

    def validate(self) -> None:
        """Cross-attribute checks; raise InvalidAttributes."""

    def as_json(self) -> dict[str, int | float]:
        return {key: getattr(self, key) for key in self.attributes}

    def new_state(self) -> Any:
        """Per connection and direction state, kept while the toxic exists."""
        return None

    async def pipe(self, stub: Stub) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def cleanup(self, stub: Stub) -> bool:
        """Called when the toxic is removed from a live link; True = the link was closed."""
        return False
