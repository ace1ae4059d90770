"""Bad input raises :class:`~gemini_ws.ConfigurationError`, whichever constructor it reaches.

attrs raises a bare ``TypeError`` for an unknown, missing or surplus argument, and its validators
raise ``TypeError`` or ``ValueError``. A user of a public class should see one error type with a
message that names the class and the argument, so every public attrs class is decorated with
:func:`validated` (above ``@attrs.frozen``). Converters that already raise ConfigurationError
are left alone.

Python's ``bool`` is an ``int`` (``isinstance(True, int)``), so ``pool_size=True`` would quietly
mean 1: :func:`check_int` and :func:`check_number` refuse bools, as does the :func:`no_bool`
attrs validator.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from ._errors import ConfigurationError

__all__ = ["check_int", "check_number", "no_bool", "validated"]

_C = TypeVar("_C", bound=type[Any])
_INIT_PREFIX = re.compile(r"^[\w.<>]*__init__\(\)\s*")


def validated(cls: _C) -> _C:
    """Make the constructor of the attrs class *cls* raise ConfigurationError, never a bare
    TypeError or ValueError (unknown or missing arguments, attrs validators, converters).

    Use it above the attrs decorator::

        @validated
        @attrs.frozen
        class ReconnectPolicy: ...

    The class is changed in place (only ``__init__`` is wrapped; ``attrs.evolve``, pickling and
    the decoder, which builds instances without ``__init__``, are unaffected) and returned.
    Applying it twice is harmless.
    """
    target: Any = cls  # (attrs.has() would narrow the type of cls)
    if not isinstance(target, type) or not attrs.has(target):
        raise TypeError(f"validated() needs an attrs class, got {cls!r}")
    init: Callable[..., None] = target.__init__
    if getattr(init, "_gemini_ws_validated", False):
        return cls
    fields = tuple(a for a in attrs.fields(target) if a.init)
    accepted = tuple(_alias(a) for a in fields)

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except ConfigurationError as exc:
            # a converter refused a value: name the class and the argument
            culprit = _culprit(fields, args, kwargs)
            if culprit is None:
                raise
            text = exc.message
            if not text.startswith(culprit):
                text = f"{culprit}: {text}"
            raise ConfigurationError(f"{cls.__name__}.{text}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(_explain(cls.__name__, accepted, kwargs, exc)) from None

    __init__._gemini_ws_validated = True  # type: ignore[attr-defined]
    target.__init__ = __init__  # type: ignore[method-assign]
    return cls


def _alias(field: attrs.Attribute[Any]) -> str:
    """The keyword that sets *field* in ``__init__`` (its name without a leading ``_``)."""
    return field.alias or field.name


def _culprit(
    fields: tuple[attrs.Attribute[Any], ...], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> str | None:
    """The first argument whose converter refuses its value (run again, on the error path)."""
    positional = [a for a in fields if not a.kw_only]
    given = [(a, v) for a, v in zip(positional, args, strict=False)]
    given += [(a, kwargs[_alias(a)]) for a in fields if _alias(a) in kwargs]
    for field, value in given:
        convert = field.converter
        if convert is None or isinstance(convert, attrs.Converter) or not callable(convert):
            continue
        try:
            convert(value)
        except ConfigurationError:
            return _alias(field)
        except Exception:  # not the error being explained
            continue
    return None


def _explain(
    name: str, accepted: tuple[str, ...], kwargs: Mapping[str, Any], exc: Exception
) -> str:
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        key = unknown[0]
        hint = difflib.get_close_matches(key, accepted, n=1)
        text = f"{name}() got an unknown argument {key!r:.60}"
        if hint:
            return f"{text}; did you mean {hint[0]!r}?"
        return f"{text} (it takes: {', '.join(accepted) or 'no arguments'})"
    detail = _INIT_PREFIX.sub("", str(exc))
    if isinstance(exc, TypeError) and detail != str(exc):
        return f"{name}() {detail}"  # missing or surplus arguments
    return f"{name}: {detail}"  # a validator: attrs names the argument


def no_bool(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An attrs validator refusing ``True``/``False`` where a number is meant."""
    if isinstance(value, bool):
        raise TypeError(f"{attribute.name!r} must be a number, not a bool ({value!r})")


def check_int(name: str, value: Any, *, minimum: int = 0, optional: bool = False) -> None:
    """Raise ConfigurationError unless *value* is an int >= *minimum* (None if *optional*).
    A bool is not an int here."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "an int >= 0" if minimum == 0 else f"an int >= {minimum}"
        if minimum == 1:
            what = "a positive int"
        raise ConfigurationError(
            f"{name} must be {what}{' or None' if optional else ''}, got {value!r:.40}"
        )


def check_number(name: str, value: Any, *, optional: bool = False) -> None:
    """Raise ConfigurationError unless *value* is a positive int or float (None if *optional*).
    A bool is not a number here; NaN is refused."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(
            f"{name} must be a positive number{' or None' if optional else ''}, "
            f"got {value!r:.40}"
        )
