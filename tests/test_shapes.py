"""The shape planner: Keras 3's arithmetic, the mirror decoder, explicit decoders and messages."""

import itertools

import numpy as np
import pytest

from autoencoder.config import ModelConfig, load_config
from autoencoder.errors import UserError
from autoencoder.shapes import format_plan, plan_model
from autoencoder.shapes.arithmetic import (
    FORMULA,
    conv_output_size,
    conv_transpose_output_size,
    output_padding_for,
    output_padding_ok,
    pool_output_size,
    transpose_choices,
)

SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 13, 14, 16, 20, 23, 25, 28, 33]


def model(**fields) -> ModelConfig:
    return ModelConfig.model_validate(fields)


def conv(filters=4, **kw):
    return {"type": "conv", "filters": filters, **kw}


def convt(filters=4, **kw):
    return {"type": "conv_transpose", "filters": filters, **kw}


def error(**fields) -> str:
    with pytest.raises(UserError) as info:
        plan_model(model(**fields))
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# One-axis arithmetic against Keras's own compute_output_shape (no weights, no TF ops)


def test_conv_and_pool_sizes_match_keras(keras):
    for size, k, s, pad, d in itertools.product(
        SIZES, range(1, 6), (1, 2, 3), ("same", "valid"), (1, 2)
    ):
        if s > 1 and d > 1:
            continue
        ours = conv_output_size(size, k, s, pad, d)
        layer = keras.layers.Conv2D(1, (k, 1), strides=(s, 1), padding=pad, dilation_rate=(d, 1))
        if ours <= 0:
            with pytest.raises(ValueError):
                layer.compute_output_shape((None, size, 3, 1))
            continue
        assert layer.compute_output_shape((None, size, 3, 1))[1] == ours, (size, k, s, pad, d)
    for size, p, s, pad in itertools.product(SIZES, range(1, 5), (1, 2, 3), ("same", "valid")):
        ours = pool_output_size(size, p, s, pad)
        layer = keras.layers.MaxPooling2D((p, 1), strides=(s, 1), padding=pad)
        if ours <= 0:
            with pytest.raises(ValueError):
                layer.compute_output_shape((None, size, 3, 1))
            continue
        assert layer.compute_output_shape((None, size, 3, 1))[1] == ours, (size, p, s, pad)


def test_conv_transpose_sizes_match_keras(keras):
    for size, k, s, pad, d in itertools.product(
        SIZES, range(1, 6), (1, 2, 3), ("same", "valid"), (1, 2)
    ):
        if s > 1 and d > 1:
            continue
        for op in (None, *range(s)):
            layer = keras.layers.Conv2DTranspose(
                1,
                (k, 1),
                strides=(s, 1),
                padding=pad,
                dilation_rate=(d, 1),
                output_padding=None if op is None else (op, 0),
            )
            want = layer.compute_output_shape((None, size, 3, 1))[1]
            assert conv_transpose_output_size(size, k, s, pad, op, d) == want, (size, k, s, pad, op)


def test_conv_transpose_runs_in_tensorflow_exactly_where_planned(keras):
    import tensorflow as tf

    # Keras's shape rule accepts output_padding 0 with an even 'same' kernel; TensorFlow does not.
    refused = 0
    for k, s, pad, op in [
        (2, 1, "same", 0),
        (2, 2, "same", 0),
        (4, 2, "same", 0),
        (4, 2, "same", 1),
        (3, 2, "same", 0),
        (3, 2, "same", 1),
        (2, 3, "same", 2),
        (1, 3, "valid", 0),
        (2, 2, "valid", 1),
        (5, 3, "valid", 2),
    ]:
        layer = keras.layers.Conv2DTranspose(1, k, strides=s, padding=pad, output_padding=op)
        x = np.zeros((1, 5, 4, 1), "float32")
        if output_padding_ok(k, s, pad, op):
            want = (
                conv_transpose_output_size(5, k, s, pad, op),
                conv_transpose_output_size(4, k, s, pad, op),
            )
            assert tuple(layer(x).shape[1:3]) == want
        else:
            # TensorFlow's own errors (InvalidArgumentError; oneDNN's AbortedError), not Keras's.
            with pytest.raises(tf.errors.OpError):
                layer(x)
            refused += 1
    assert refused == 3  # the listed even 'same' kernels whose output_padding 0 TF refuses


def test_transpose_choices_prefer_keras_default():
    assert transpose_choices(7, 3, 2, "same") == {13: 0, 14: None}
    assert transpose_choices(22, 3, 1, "valid") == {24: None}
    assert transpose_choices(3, 2, 2, "valid") == {6: None, 7: 1}
    # Even 'same' kernel: output_padding 0 is refused, the default gives in*stride.
    assert transpose_choices(7, 2, 2, "same") == {13: 1, 14: None}
    assert output_padding_for((7, 7), (13, 14), (3, 3), (2, 2), "same") == (0, 1)
    with pytest.raises(LookupError):
        output_padding_for((7, 7), (15, 14), (3, 3), (2, 2), "same")


# ---------------------------------------------------------------------------------------------
# Mirror decoder: exactly input_shape back, for any size

MIRROR_ENCODERS = {
    "tutorial": [conv(32, padding="valid"), conv(16, padding="valid"), conv(8, padding="valid")],
    "stride2_same": [conv(8, strides=2), conv(16, strides=2)],
    "stride2_valid": [conv(8, strides=2, padding="valid"), conv(16, strides=2, padding="valid")],
    "stride3": [conv(8, strides=3, kernel_size=5), conv(8, strides=3, padding="valid")],
    "mixed_axes": [conv(8, strides=[2, 3], kernel_size=[3, 4]), conv(8, strides=[3, 1])],
    "even_same": [conv(8, strides=2, kernel_size=2), conv(8, strides=2, kernel_size=4)],
    "pool_valid": [conv(8), {"type": "maxpool"}, conv(8), {"type": "avgpool", "pool_size": 3}],
    "pool_same": [
        conv(8),
        {"type": "maxpool", "padding": "same"},
        conv(8),
        {"type": "maxpool", "padding": "same", "pool_size": 3, "strides": 2},
    ],
    "upsample_valid": [
        conv(8),
        {"type": "maxpool", "mirror": "upsample"},
        conv(8),
        {"type": "maxpool", "mirror": "upsample", "pool_size": 3},
    ],
    "upsample_same": [conv(8), {"type": "maxpool", "padding": "same", "mirror": "upsample"}],
    "dilated": [
        conv(8, dilation_rate=2, padding="valid"),
        conv(8, dilation_rate=2),
        conv(8, strides=2),
    ],
    "space_to_depth": [{"type": "space_to_depth"}, conv(8), conv(12, strides=2)],
}
MIRROR_SHAPES = [
    (28, 28, 1),
    (23, 23, 1),
    (25, 25, 1),
    (32, 32, 3),
    (28, 20, 1),
    (7, 9, 1),
    (13, 17, 2),
    (31, 29, 1),
    (16, 16, 1),
]


@pytest.mark.parametrize("name", sorted(MIRROR_ENCODERS))
@pytest.mark.parametrize("latent", [None, 6])
def test_mirror_returns_exactly_the_input_shape(name, latent):
    for shape in MIRROR_SHAPES:
        try:
            plan = plan_model(
                model(input_shape=shape, encoder=MIRROR_ENCODERS[name], latent_dim=latent)
            )
        except UserError as exc:  # too small for this encoder: only a 'valid' fit may refuse,
            # or a fold into 2x2 patches of an odd size
            refusal = "space_to_depth folds" if name == "space_to_depth" else "is larger than its"
            assert refusal in str(exc), (name, shape, exc)
            assert name != "space_to_depth" or shape[0] % 2 or shape[1] % 2
            continue
        assert plan.layers[-1].output_shape == shape, (name, shape)
        # Every decoder layer's input is the previous layer's output.
        for before, after in zip(plan.layers, plan.layers[1:]):
            assert after.input_shape == before.output_shape
        # Crops only where no output_padding reaches: UpSampling2D, or an even 'same' kernel
        # whose axes need different Keras defaults.
        kinds = {layer.kind for layer in plan.layers}
        assert not kinds & {"Resizing", "Lambda"}
        if name not in ("upsample_valid", "upsample_same", "even_same", "mixed_axes"):
            assert not kinds & {"Cropping2D", "ZeroPadding2D"}, (name, shape)


def test_mirror_lands_on_every_encoder_size():
    plan = plan_model(
        model(input_shape=(23, 23, 1), encoder=[conv(8, strides=2), conv(16, strides=3)])
    )
    enc = [layer.input_shape[:2] for layer in plan.part("encoder")]
    dec = [layer.output_shape[:2] for layer in plan.part("decoder")[:-1]]
    assert dec == list(reversed(enc)) == [(12, 12), (23, 23)]
    assert [layer.options["filters"] for layer in plan.part("decoder")] == [16, 8, 1]


def test_mirror_of_the_tutorial_is_the_tutorial():
    mirror = plan_model(model(encoder=MIRROR_ENCODERS["tutorial"]))
    convs = [layer for layer in mirror.layers if layer.kind == "Conv2DTranspose"]
    assert [layer.options["filters"] for layer in convs] == [8, 16, 32]
    assert all(layer.output_padding is None for layer in convs)
    assert mirror.total_params == 12785


def test_even_kernel_mixed_axes_falls_back_to_a_crop():
    plan = plan_model(model(input_shape=(28, 27, 1), encoder=[conv(8, strides=2, kernel_size=2)]))
    kinds = [layer.kind for layer in plan.part("decoder")]
    assert kinds == ["Conv2DTranspose", "Cropping2D", "Conv2D"]
    assert plan.layers[-1].output_shape == (28, 27, 1)


KERAS_GRID = [
    ((23, 23, 1), "stride2_same", None),
    ((25, 25, 1), "stride3", 5),
    ((28, 20, 1), "pool_valid", None),
    ((13, 17, 2), "mixed_axes", None),
    ((23, 23, 1), "upsample_valid", None),
    ((16, 16, 1), "dilated", None),
    ((28, 27, 1), "even_same", None),
    ((25, 23, 1), "pool_same", None),
    ((28, 20, 1), "space_to_depth", 6),
    ((32, 32, 3), "space_to_depth", None),
]


@pytest.mark.parametrize("shape,name,latent", KERAS_GRID)
def test_built_keras_model_has_the_planned_shapes(keras, shape, name, latent):
    from autoencoder.model import build_from_plan

    plan = plan_model(model(input_shape=shape, encoder=MIRROR_ENCODERS[name], latent_dim=latent))
    autoencoder, encoder, decoder = build_from_plan(plan)
    for part, built in (("encoder", encoder), ("decoder", decoder)):
        for planned in plan.part(part):
            assert tuple(built.get_layer(planned.name).output.shape[1:]) == planned.output_shape
    assert autoencoder.output_shape[1:] == shape
    assert autoencoder.count_params() == plan.total_params
    # TensorFlow runs it too (it refuses some output_paddings Keras's shape rule accepts).
    assert tuple(autoencoder(np.zeros((1, *shape), "float32")).shape) == (1, *shape)


def test_space_to_depth_folds_patches_and_its_mirror_unfolds_them():
    plan = plan_model(model(input_shape=(28, 20, 3), encoder=MIRROR_ENCODERS["space_to_depth"]))
    fold = plan.layers[0]
    assert (fold.kind, fold.output_shape, fold.params) == ("SpaceToDepth", (14, 10, 12), 0)
    assert fold.formula == "each 2x2 patch folded into one pixel: 28/2 = 14, channels 3*2*2 = 12"
    unfold = plan.part("decoder")[-2]
    assert (unfold.kind, unfold.input_shape, unfold.output_shape) == (
        "DepthToSpace",
        (14, 10, 8),
        (28, 20, 2),
    )
    assert plan.layers[-1].output_shape == (28, 20, 3)


def test_space_to_depth_and_depth_to_space_refusals():
    assert error(input_shape=[28, 27, 1], encoder=[{"type": "space_to_depth"}, conv()]) == (
        "encoder block 1 (model.encoder[0]): space_to_depth folds 2x2 patches, but its input is "
        "28x27, not a multiple of 2 on each side; use size: a divisor of both, or bring the size "
        "to a multiple first (e.g. 28x26: data.image_size, or a conv with padding valid)"
    )
    assert error(
        input_shape=[28, 28, 1],
        encoder=[conv(strides=2)],
        decoder=[conv(6), {"type": "depth_to_space"}],
    ) == (
        "decoder block 2 (model.decoder[1]): depth_to_space unfolds 4 channels into each 2x2 "
        "patch, but its input 14x14x6 has 6, not a multiple of 4; give the block before it "
        "filters: a multiple of 4"
    )
    # A mirrored fold unfolds what the encoder's next block made: its filters must divide.
    assert "depth_to_space unfolds 9 channels" in error(
        input_shape=[27, 27, 1], encoder=[{"type": "space_to_depth", "size": 3}, conv(8)]
    )
    assert error(
        input_shape=[28, 28, 1],
        encoder=[conv(strides=2), conv(16, strides=2)],
        decoder=[{"type": "depth_to_space", "size": 4}],
        skips="concat",
    ).startswith(
        "decoder block 1 (model.decoder[0]): 7x7 -> 28x28, but with skips it must land on "
        "14x14 (encoder block 1's output, which the skip joins there); depth_to_space "
        "multiplies by size 4; change size, or use a conv_transpose block with target_size: "
        "[14, 14] instead"
    )


def test_a_unet_at_half_resolution_folds_in_and_unfolds_out():
    """FFDNet's layout: fold the image, work at 14x14 and 7x7 with a skip, unfold at the end."""
    plan = plan_model(
        model(
            input_shape=[28, 28, 1],
            encoder=[{"type": "space_to_depth"}, conv(16), conv(32, strides=2)],
            skips="concat",
            decoder=[convt(16, strides=2), conv(16), {"type": "depth_to_space"}],
        )
    )
    assert [layer.output_shape for layer in plan.part("decoder")] == [
        (14, 14, 16),
        (14, 14, 32),  # joined by enc 2's 14x14x16
        (14, 14, 16),
        (28, 28, 4),
        (28, 28, 1),
    ]
    assert [s.merge for s in plan.skip_layers] == ["enc2_conv"]


# ---------------------------------------------------------------------------------------------
# Explicit decoders

TWO_STRIDES = [conv(strides=2), conv(strides=2)]


def test_explicit_decoder_names_the_block_that_parts_from_the_encoder():
    message = error(
        input_shape=[30, 30, 1],
        encoder=[conv(strides=2)] * 3,
        decoder=[convt(strides=2, target_size=8), convt(strides=2), convt(strides=2)],
    )
    assert message == (
        "decoder block 2 (model.decoder[1]): 8x8 -> 16x16, but the encoder had 15x15 there; "
        f"use output_padding: 0 ({FORMULA})"
    )


def test_explicit_decoder_wrong_output_padding():
    message = error(
        input_shape=[28, 28, 1],
        encoder=TWO_STRIDES,
        decoder=[convt(strides=2, output_padding=0), convt(strides=2)],
    )
    assert message == (
        "decoder block 1 (model.decoder[0]): 7x7 -> 13x13, but the encoder had 14x14 there; "
        f"leave output_padding out (Keras's default) ({FORMULA})"
    )


def test_explicit_decoder_unreachable_fix_lists_reachable_sizes():
    message = error(
        input_shape=[28, 28, 1], encoder=TWO_STRIDES, decoder=[convt(strides=2), convt(strides=4)]
    )
    assert message == (
        "decoder block 2 (model.decoder[1]): 14x14 -> 56x56, but the encoder had 28x28 there; "
        "no output_padding reaches it with kernel_size 3x3, strides 4x4, padding same (it can "
        f"reach 53x53, 54x54, 55x55, 56x56); change kernel_size, strides or padding ({FORMULA})"
    )


def test_explicit_decoder_upsample_mismatch():
    message = error(
        input_shape=[28, 28, 1],
        encoder=TWO_STRIDES,
        decoder=[{"type": "upsample"}, {"type": "upsample", "size": 3}],
    )
    assert message == (
        "decoder block 2 (model.decoder[1]): 14x14 -> 42x42, but the encoder had 28x28 there; "
        "UpSampling2D multiplies by size 3x3; use a conv_transpose block with target_size: "
        "[28, 28] instead"
    )


def test_explicit_decoder_with_too_few_blocks_names_the_final_size():
    message = error(input_shape=[28, 28, 1], encoder=TWO_STRIDES, decoder=[convt(strides=2)])
    assert message == (
        "decoder: ends at 14x14, but input_shape is 28x28 (decoder sizes 7x7 -> 14x14; encoder "
        "sizes 28x28 -> 14x14 -> 7x7); add or change blocks, e.g. a conv_transpose block with "
        "target_size: [28, 28]"
    )


def test_explicit_decoder_may_take_its_own_path():
    # keras.io denoising: two pools down, two strided transposes up; a stride-4 jump also works.
    plan_model(model(encoder=TWO_STRIDES, decoder=[convt(strides=4, kernel_size=4)]))
    plan = plan_model(
        model(
            input_shape=[28, 28, 1],
            encoder=TWO_STRIDES,
            decoder=[
                {"type": "upsample"},
                convt(),
                {"type": "upsample"},
                {"type": "conv", "filters": 4},
            ],
        )
    )
    assert plan.layers[-1].output_shape == (28, 28, 1)


def test_target_size_picks_output_padding():
    plan = plan_model(
        model(
            input_shape=[23, 23, 1],
            encoder=TWO_STRIDES,
            decoder=[convt(strides=2, target_size=12), convt(strides=2, target_size=23)],
        )
    )
    ops = [layer.output_padding for layer in plan.part("decoder")[:2]]
    assert ops == [None, (0, 0)]  # 6x6 -> 12x12 is the default in*stride
    plan = plan_model(
        model(
            input_shape=[28, 20, 1],
            encoder=TWO_STRIDES,
            decoder=[
                convt(strides=2, target_size=[14, 10]),
                convt(strides=2, target_size=[28, 20]),
            ],
        )
    )
    assert [layer.output_padding for layer in plan.part("decoder")[:2]] == [None, None]


def test_target_size_refuses_unreachable_and_lists_reachable():
    message = error(
        input_shape=[28, 28, 1],
        encoder=TWO_STRIDES,
        decoder=[convt(strides=2, target_size=16), convt(strides=2)],
    )
    assert message == (
        "decoder block 1 (model.decoder[0]).target_size: 16x16 is out of reach from 7x7 with "
        "kernel_size 3x3, strides 2x2, padding same; it can reach 13x13, 14x14 "
        f"({FORMULA})"
    )
    message = error(
        input_shape=[28, 20, 1],
        encoder=TWO_STRIDES,
        decoder=[convt(strides=[2, 3], target_size=[14, 20]), convt(strides=2)],
    )
    assert message.endswith(f"it can reach height 13, 14; width 13, 14, 15 ({FORMULA})")


# ---------------------------------------------------------------------------------------------
# Bad specs: one line naming the block and the field


def test_kernel_larger_than_input():
    assert error(input_shape=[5, 5, 1], encoder=[conv(kernel_size=7, padding="valid")]) == (
        "encoder block 1 (model.encoder[0]): kernel_size 7x7 is larger than its 5x5 input with "
        "padding valid; use padding: same or a smaller kernel_size"
    )
    assert error(
        input_shape=[5, 5, 1], encoder=[conv(kernel_size=3, dilation_rate=3, padding="valid")]
    ) == (
        "encoder block 1 (model.encoder[0]): kernel_size 3x3 (dilated to 7x7) is larger than its "
        "5x5 input with padding valid; use padding: same or a smaller kernel_size"
    )
    assert error(
        input_shape=[8, 8, 1],
        encoder=TWO_STRIDES,
        decoder=[{"type": "conv", "filters": 2, "kernel_size": 3, "padding": "valid"}],
    ).startswith("decoder block 1 (model.decoder[0]): kernel_size 3x3 is larger than its 2x2 input")


def test_pool_collapsing_to_zero():
    assert error(
        input_shape=[9, 9, 1], encoder=[conv(strides=3), {"type": "maxpool", "pool_size": 4}]
    ) == (
        "encoder block 2 (model.encoder[1]): pool_size 4x4 is larger than its 3x3 input with "
        "padding valid, so the output would be 0x0; use padding: same or a smaller pool_size"
    )


def test_crop_to_nothing():
    assert error(
        input_shape=[28, 28, 1],
        encoder=[conv(strides=2)],
        decoder=[{"type": "crop", "cropping": [[7, 7], [0, 0]]}],
    ) == (
        "decoder block 1 (model.decoder[0]).cropping: removes 14x0 from a 14x14 input, leaving "
        "0x14; crop less"
    )


def test_output_padding_tensorflow_refuses():
    assert error(
        input_shape=[28, 28, 1],
        encoder=TWO_STRIDES,
        decoder=[convt(strides=2, kernel_size=2, output_padding=0), convt(strides=2)],
    ) == (
        "decoder block 1 (model.decoder[0]).output_padding: 0 with the even kernel_size 2 and "
        "padding same gives (in-1)*stride, one stride short, which TensorFlow refuses at run time; "
        "use output_padding between 1 and stride-1, or leave it out for in*stride"
    )


def test_dilated_transpose_refused_on_cpu():
    assert error(input_shape=[28, 28, 1], encoder=[conv()], decoder=[convt(dilation_rate=2)]) == (
        "decoder block 1 (model.decoder[0]).dilation_rate: TensorFlow has no CPU kernel for a "
        "dilated Conv2DTranspose; use dilation_rate: 1 with kernel_size [5, 5] (the same reach)"
    )


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["model.encoder.0.filters=0"],
            "--set model.encoder.0.filters=0: model.encoder[0].filters: must be a positive integer, got 0",
        ),
        (
            ["model.encoder.1.activation=rellu"],
            "--set model.encoder.1.activation=rellu: model.encoder[1].activation: unknown activation "
            "'rellu'; did you mean 'relu'?",
        ),
        (
            ["model.encoder.0.strides=2", "model.encoder.0.dilation_rate=2"],
            "--set model.encoder.0.dilation_rate=2: model.encoder[0]: strides [2, 2] together with "
            "dilation_rate [2, 2] is not supported by Keras; set one of them to 1",
        ),
        (
            ["model.decoder=[{type: conv_transpose, filters: 4, strides: 2, output_padding: 2}]"],
            "--set model.decoder=[{type: conv_transpose, filters: 4, strides: 2, output_padding: 2}]: "
            "model.decoder[0]: output_padding [2, 2] must be smaller than strides [2, 2] on every axis "
            "(Keras rule: output_padding < stride)",
        ),
    ],
)
def test_config_level_refusals(overrides, message):
    with pytest.raises(UserError) as info:
        load_config(None, overrides)
    assert str(info.value) == message


# ---------------------------------------------------------------------------------------------
# The printed plan


def test_format_plan_shows_formula_lines_and_totals():
    text = format_plan(plan_model(load_config("configs/keras_denoising.yaml").model))
    assert "(7-1)*2 + 3 - 2*1 + 1 = 14" in text
    assert "(14-1)*2 + 3 - 2*1 + 1 = 28" in text
    assert "parameters: 28,353 (encoder 9,568, decoder 18,785)" in text
    assert "code: 7x7x32 = 1,568 values" in text
    assert FORMULA in text
    header = text.splitlines()[0].split()
    assert header[:3] == ["block", "layer", "kernel"]
    text = format_plan(
        plan_model(model(input_shape=[23, 23, 1], encoder=TWO_STRIDES, latent_dim=8))
    )
    assert "(12-1)*2 + 3 - 2*1 + 0 = 23" in text
    assert "compression 529/8 = 66.12x" in text


# ---------------------------------------------------------------------------------------------
# Roles


def roles(plan) -> dict[str, list[str]]:
    """Role -> the names of the planned layers that have it."""
    found: dict[str, list[str]] = {}
    for layer in plan.layers:
        if layer.role:
            found.setdefault(layer.role, []).append(layer.name)
    return found


def test_roles_mark_the_skips_and_the_output_of_the_unet_preset():
    plan = plan_model(load_config("configs/unet_denoise.yaml").model)
    assert roles(plan) == {"skip": ["dec2_skip", "dec3_skip"], "output": ["output_conv"]}
    assert [layer.kind for layer in plan.skip_layers] == ["Concatenate", "Concatenate"]


def test_roles_mark_the_projections_of_add_skips():
    encoder = [conv(8), conv(12, strides=2), conv(16, strides=2)]
    plan = plan_model(model(input_shape=[28, 28, 1], encoder=encoder, skips="add"))
    assert [(layer.name, layer.kind, layer.role) for layer in plan.layers if layer.role] == [
        ("dec1_skip_proj", "Conv2D", "skip_projection"),
        ("dec1_skip", "Add", "skip"),
        ("dec2_skip_proj", "Conv2D", "skip_projection"),
        ("dec2_skip", "Add", "skip"),
        ("output_conv", "Conv2D", "output"),
    ]


def test_roles_mark_residual_shortcuts_and_adds():
    plan = plan_model(load_config("configs/residual32.yaml").model)
    assert roles(plan) == {
        "shortcut": ["enc2_proj_conv", "dec2_proj_convT"],
        "residual": ["enc2_add", "enc3_add", "dec1_add", "dec2_add"],
        "output": ["output_conv"],
    }
    assert plan.skip_layers == []
