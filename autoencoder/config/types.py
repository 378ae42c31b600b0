"""The value types config sections are made of: counts, fractions, [h, w] pairs, class keys."""

from __future__ import annotations

import math
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


def _is_level(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _noise_level(number: bool):
    # A level is a number, or a range [low, high] from which each image draws its own (blind
    # denoising); one message for every wrong form, so a mistake is one line, not one per option.
    what = "a number >= 0, or a range [low, high] of them" if number else "a range [low, high]"

    def check(value: Any) -> float | tuple[float, float]:
        if number and _is_level(value) and value >= 0:
            return float(value)
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_is_level, value)):
            low, high = float(value[0]), float(value[1])
            if 0 <= low < high:
                return (low, high)
            if low > high >= 0:
                raise ValueError(
                    f"the range {show(list(value))} must go up: write [{high:g}, {low:g}]"
                )
            if low == high >= 0:
                single = f", or the number {low:g} for one level" if number else ""
                raise ValueError(f"the range {show(list(value))} is empty: give low < high{single}")
        raise ValueError(f"must be {what} with 0 <= low < high, got {show(value)}")

    return check


_LEVEL = {"type": "number", "minimum": 0}
_LEVEL_RANGE = {"type": "array", "items": _LEVEL, "minItems": 2, "maxItems": 2}

# A noise level (0.4), or a range ([0.0, 0.7]) from which each image draws its own.
NoiseLevel = Annotated[
    float | tuple[float, float],
    BeforeValidator(_noise_level(True)),
    WithJsonSchema({"anyOf": [_LEVEL, _LEVEL_RANGE]}),
]
NoiseRange = Annotated[
    tuple[float, float], BeforeValidator(_noise_level(False)), WithJsonSchema(_LEVEL_RANGE)
]


def level_text(level: float | tuple[float, float]) -> str:
    """A level as names and labels write it: the number, or low-high for a range."""
    return f"{level:g}" if isinstance(level, (int, float)) else f"{level[0]:g}-{level[1]:g}"


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
