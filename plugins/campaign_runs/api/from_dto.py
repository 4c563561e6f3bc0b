"""REST response models built from the core's dataclasses (``core.dto``): each field is declared once, in its DTO.

A model names its DTOs and what it leaves out; every other dataclass field of its first DTO becomes a field of
the same name, with the DTO's type (a nested DTO becomes its own model: ``list[EmailView]`` is ``list[EmailOut]``).
In the model's body, ``name: FromDto = Field(...)`` adds what only the REST API says (a description, bounds, a
REST name through ``validation_alias``), or takes a property of the DTO; an explicit type narrows the DTO's
(``status: RunStatus`` for its ``str``). The models read the DTOs' attributes (``Model.of(dto, ...)``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import operator
import types
import typing
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

# Each DTO's REST model, for the DTOs nested in others (the first model built from a DTO is its model).
_MODELS: dict[type, type[DtoModel]] = {}


class FromDto:
    """The annotation of a field whose type is its DTO's (dataclass field or property)."""


class _Attributes:
    """Attribute look-up over several objects in turn: a flat REST model read from a DTO and a DTO inside it."""

    def __init__(self, *objects: object) -> None:
        self._objects = objects

    def __getattr__(self, name: str) -> Any:
        for obj in self._objects:
            if hasattr(obj, name):
                return getattr(obj, name)
        raise AttributeError(name)


def dto_type(dtos: tuple[type, ...], name: str) -> Any:
    """The type of ``name`` in the first of ``dtos`` that has it: a dataclass field's, or a property's return."""
    for dto in dtos:
        if name in {f.name for f in dataclasses.fields(dto)}:
            return typing.get_type_hints(dto)[name]
        prop = inspect.getattr_static(dto, name, None)
        if isinstance(prop, property) and prop.fget is not None:
            return typing.get_type_hints(prop.fget)["return"]
    raise TypeError(f"None of {[d.__name__ for d in dtos]} has a field or property {name!r}.")


def _rest_type(tp: Any) -> Any:
    """``tp`` with every DTO in it replaced by its REST model."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if tp not in _MODELS:
            raise TypeError(f"{tp.__name__} has no REST model yet: declare its model first.")
        return _MODELS[tp]
    args = typing.get_args(tp)
    if not args:
        return tp
    rest = tuple(_rest_type(a) for a in args)
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return functools.reduce(operator.or_, rest)
    return origin[rest]


def _is_marker(annotation: Any) -> bool:
    """Whether a body's annotation is ``FromDto`` (a string under ``from __future__ import annotations``)."""
    return annotation is FromDto or (isinstance(annotation, str) and annotation.rsplit(".", 1)[-1] == "FromDto")


def _source(cls: type[BaseModel], name: str) -> str:
    """The DTO attribute a field of ``cls`` reads: its ``validation_alias``, else its own name."""
    alias = cls.__dict__.get(name)
    alias = getattr(alias, "validation_alias", None)
    return alias if isinstance(alias, str) else name


class DtoModel(BaseModel):
    """A response model whose fields are its DTOs' (see the module's docstring)."""

    # Every field is in every answer: the OpenAPI document says so (required), defaults or not.
    model_config = ConfigDict(
        from_attributes=True,
        validate_by_name=True,
        validate_by_alias=True,
        json_schema_serialization_defaults_required=True,
    )

    __dtos__: ClassVar[tuple[type, ...]] = ()
    __omitted__: ClassVar[frozenset[str]] = frozenset()
    __sources__: ClassVar[dict[str, str]] = {}  # REST field -> the DTO attribute it reads
    __narrowed__: ClassVar[dict[str, Any]] = {}  # REST field -> its type, where the body narrows the DTO's

    def __init_subclass__(cls, *, dto: type | tuple[type, ...] = (), omit: tuple[str, ...] = (), **kwargs: Any) -> None:
        """Fill the model's annotations from its DTOs before pydantic collects its fields."""
        super().__init_subclass__(**kwargs)
        dtos = dto if isinstance(dto, tuple) else (dto,)
        if not dtos:
            return
        dto_fields = [f.name for f in dataclasses.fields(dtos[0])]
        unknown = set(omit) - set(dto_fields)
        if unknown:
            raise TypeError(f"{cls.__name__} omits {sorted(unknown)}: not fields of {dtos[0].__name__}.")
        own: dict[str, Any] = dict(inspect.get_annotations(cls))
        sources = {name: _source(cls, name) for name in own}
        narrowed = {name: tp for name, tp in own.items() if not _is_marker(tp)}
        inherited = set(getattr(cls, "__sources__", {}).values())
        by_source = {source: name for name, source in sources.items()}
        ordered = [by_source.get(f, f) for f in dto_fields if f in by_source or f not in {*omit, *inherited}]
        ordered += [name for name in own if name not in ordered]
        cls.__annotations__ = {
            name: own[name] if name in narrowed else _rest_type(dto_type(dtos, sources.get(name, name)))
            for name in ordered
        }
        cls.__dtos__ = dtos
        cls.__omitted__ = frozenset(omit)
        cls.__sources__ = {**getattr(cls, "__sources__", {}), **{name: sources.get(name, name) for name in ordered}}
        cls.__narrowed__ = {**getattr(cls, "__narrowed__", {}), **narrowed}
        _MODELS.setdefault(dtos[0], cls)

    @classmethod
    def of(cls, *objects: object) -> Self:
        """The model of a DTO (with more objects: the first that has each attribute gives it)."""
        return cls.model_validate(objects[0] if len(objects) == 1 else _Attributes(*objects))
