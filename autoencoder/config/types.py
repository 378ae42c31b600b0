"""The value types config sections are made of: counts, fractions, [h, w] pairs, class keys."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    WithJsonSchema,
)

from autoencoder.config.text import show

PosInt = Annotated[StrictInt, Field(gt=0)]
NonNegInt = Annotated[StrictInt, Field(ge=0)]
Fraction = Annotated[StrictFloat, Field(ge=0, lt=1)]
PosFloat = Annotated[StrictFloat, Field(gt=0)]


def _pair(minimum: int):
    def check(value: Any) -> tuple[int, int]:
        what = "a positive integer" if minimum > 0 else "a non-negative integer"
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value, value]
        if (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            if min(value) < minimum:
                raise ValueError(f"must be {what} or a pair [h, w] of them, got {list(value)}")
            return (int(value[0]), int(value[1]))
        raise ValueError(f"must be {what} or a pair [h, w] of them, got {value!r}")

    return check


def _pair_schema(minimum: int) -> WithJsonSchema:
    # What _pair accepts, for the JSON Schema: a number, or a list of two.
    number = {"type": "integer", "minimum": minimum}
    pair = {"type": "array", "items": number, "minItems": 2, "maxItems": 2}
    return WithJsonSchema({"anyOf": [number, pair]})


# Sizes that may differ by axis: `3` means (3, 3); `[3, 5]` means height 3, width 5.
Pair = Annotated[tuple[int, int], BeforeValidator(_pair(1)), _pair_schema(1)]
NonNegPair = Annotated[tuple[int, int], BeforeValidator(_pair(0)), _pair_schema(0)]


class Section(BaseModel):
    """Base for config sections: unknown keys are errors, never silently ignored.

    The docstring under a field is its meaning in docs/config.md and the JSON Schema.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True)


def _class_key(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"must be a class number or a class name, got {show(value)}")
    if isinstance(value, int) and value < 0:
        raise ValueError(f"class numbers start at 0, got {value}")
    if isinstance(value, str) and not value:
        raise ValueError("a class name cannot be empty")
    return value


ClassKey = Annotated[
    int | str,
    BeforeValidator(_class_key),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1}]}
    ),
]
