"""Pausing Python's cyclic garbage collector around bulk byte work."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (see convert/__init__)
if TYPE_CHECKING:
    from typing import ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")


def without_gc(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` with the collector off: converting makes millions of short-lived bytes
    objects and lists without cycles, and the collections they trigger only cost time."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return wrapper
