"""The study configuration pattern: one frozen, validated list of a study's parameters.

A study (a scan, the pruning study, fine-tuning, the probes...) declares its parameters once, as a
frozen dataclass that mixes in :class:`StudyConfig` (the pattern of
:class:`lin_utils.scan.ScanConfig`). Everything else is derived from it: a notebook's parameters
cell (a test checks that the cell's defaults are the config's), a profile's section (validated
against the fields), the computation's signature (it takes the config) and its cache key
(:meth:`StudyConfig.params`, or a study's own ``key()`` built from it), and the claims' loaders
(:meth:`StudyConfig.from_params` on the profile's section). A missing or misspelt key fails loudly
with the list of valid ones, never as a silently different cache key.

Validation helpers (:func:`check_int`, :func:`check_str`...) raise :class:`LinUtilsError` with a
one-line message that names the field.
"""
from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import LinUtilsError

__all__ = ["INJECTED", "StudyConfig", "check_bool", "check_choice", "check_int", "check_number", "check_str",
           "check_str_list", "check_int_list"]

INJECTED = ("profile", "force")  # what the book's runner gives every page besides its config


def _plain(value: Any) -> Any:
    """JSON-like copy: tuples become lists, recursively (the cache key and YAML speak lists)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


class StudyConfig:
    """Mixin for a frozen dataclass of a study's parameters.

    Subclasses give every field a default (the cpu profile's value for a page's config) and
    validate in ``__post_init__``; list-valued fields are stored as tuples (hashable, immutable).
    """

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """``{field: default}`` as plain Python values (lists, not tuples)."""
        out = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                out[f.name] = _plain(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = _plain(f.default_factory())
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, ignore: Iterable[str] = INJECTED):
        """The config from a parameter mapping (a profile section, a notebook's parameters).

        Keys in ``ignore`` (the runner's ``profile`` and ``force``) are skipped; any other key that
        is not a field is an error naming it and the valid fields. Missing fields take their
        defaults.
        """
        return cls._check_keys(params, ignore)(**{k: v for k, v in params.items() if k in cls.field_names()})

    @classmethod
    def _check_keys(cls, params: Mapping[str, Any], ignore: Iterable[str]):
        if not isinstance(params, Mapping):
            raise LinUtilsError(f"{cls.__name__}: parameters must be a mapping, got {type(params).__name__}")
        names, ignore = cls.field_names(), set(ignore)
        unknown = sorted(str(k) for k in params if k not in names and k not in ignore)
        if unknown:
            raise LinUtilsError(f"{cls.__name__}: unknown parameter(s) {', '.join(unknown)}; "
                                f"valid: {', '.join(names)}")
        return cls

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]):
        """The config from a notebook's global variables: exactly its fields, each required."""
        names = cls.field_names()
        missing = [n for n in names if n not in namespace]
        if missing:
            raise LinUtilsError(f"{cls.__name__}: the parameters cell does not define {', '.join(missing)}")
        return cls(**{n: namespace[n] for n in names})

    def with_params(self, params: Mapping[str, Any], *, ignore: Iterable[str] = INJECTED):
        """A copy with a parameter mapping applied (a profile's section): unknown keys are an error
        naming them and the valid fields, as in :meth:`from_params`."""
        self._check_keys(params, ignore)
        return dataclasses.replace(self, **{k: v for k, v in params.items() if k in self.field_names()})

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def params(self) -> dict[str, Any]:
        """Every field as plain JSON types, in declaration order."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


# -------------------------------------------------------------------------------------------------
# Validation: each raises LinUtilsError naming the field, and returns the (normalized) value.


def check_int(name: str, value: Any, *, minimum: int | None = None, none: bool = False) -> int | None:
    if value is None and none:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or (minimum is not None and value < minimum):
        lo = "" if minimum is None else (" positive" if minimum == 1 else f" >= {minimum}")
        raise LinUtilsError(f"{name} must be an integer{lo}{' or null' if none else ''}, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, *, minimum: float | None = None, none: bool = False) -> float | None:
    if value is None and none:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or (minimum is not None and value < minimum):
        lo = "" if minimum is None else f" >= {minimum:g}"
        raise LinUtilsError(f"{name} must be a number{lo}{' or null' if none else ''}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise LinUtilsError(f"{name} must be true or false, got {value!r}")
    return value


def check_str(name: str, value: Any, *, none: bool = False) -> str | None:
    if value is None and none:
        return None
    if not isinstance(value, str) or not value.strip():
        raise LinUtilsError(f"{name} must be a non-empty string{' or null' if none else ''}, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise LinUtilsError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def check_str_list(name: str, value: Any, *, empty: bool = False, none: bool = False) -> tuple[str, ...] | None:
    if value is None and none:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise LinUtilsError(f"{name} must be a list of strings, got {value!r}")
    out = tuple(value)
    if not all(isinstance(v, str) and v.strip() for v in out) or (not out and not empty):
        raise LinUtilsError(f"{name} must be a {'' if empty else 'non-empty '}list of strings, got {value!r}")
    return out


def check_int_list(name: str, value: Any, *, minimum: int | None = None, empty: bool = False) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise LinUtilsError(f"{name} must be a list of integers, got {value!r}")
    out = tuple(value)
    ok = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and (minimum is None or v >= minimum)
             for v in out)
    if not ok or (not out and not empty):
        raise LinUtilsError(f"{name} must be a {'' if empty else 'non-empty '}list of integers"
                            f"{'' if minimum is None else f' >= {minimum}'}, got {value!r}")
    return tuple(int(v) for v in out)
