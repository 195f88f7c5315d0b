"""Parameter descriptions for the Prefect UI's run forms.

Prefect builds a deployment's form from the flow's signature and takes each parameter's
description from the Google-style ``Args:`` section of its docstring; it ignores
``Annotated[..., Field(description=...)]``. Flows here describe parameters with ``Annotated``
(one place, checked by pydantic), and ``@described`` (applied under ``@flow``) writes those
descriptions into the docstring's ``Args:`` section so the form shows them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, get_args, get_origin, get_type_hints

from pydantic.fields import FieldInfo

F = TypeVar("F", bound=Callable[..., Any])


def parameter_descriptions(fn: Callable[..., Any]) -> dict[str, str]:
    hints = get_type_hints(fn, include_extras=True)
    out: dict[str, str] = {}
    for name in inspect.signature(fn).parameters:
        hint = hints.get(name)
        if get_origin(hint) is Annotated:
            for meta in get_args(hint)[1:]:
                if isinstance(meta, FieldInfo) and meta.description:
                    out[name] = meta.description
    return out


def described(fn: F) -> F:
    """Append an ``Args:`` section built from the parameters' ``Annotated`` descriptions."""
    descriptions = parameter_descriptions(fn)
    if descriptions:
        doc = inspect.cleandoc(fn.__doc__ or fn.__name__)
        args = "\n".join(f"    {name}: {text}" for name, text in descriptions.items())
        fn.__doc__ = f"{doc}\n\nArgs:\n{args}\n"
    return fn
