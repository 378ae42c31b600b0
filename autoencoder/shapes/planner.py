"""`plan_model`: the encoder, the latent code and the decoder as one flat list of planned layers.

`model.build_models` builds exactly these layers, so the sizes and parameter counts that
`autoencoder shapes` prints are the built model's by construction.
"""

from __future__ import annotations

from autoencoder.config import ConvBlock, ModelConfig, ResidualBlock, SpaceToDepthBlock
from autoencoder.errors import UserError
from autoencoder.shapes.arithmetic import Shape, _prod, hw
from autoencoder.shapes.decoder import _plan_explicit, _plan_mirror
from autoencoder.shapes.layers import (
    _conv_layer,
    _enc_where,
    _plain_conv,
    _pool_layer,
    _residual_layers,
    _space_to_depth_layer,
)
from autoencoder.shapes.plan import Plan, PlannedLayer
from autoencoder.shapes.skips import _size_chain


def _plan_encoder(cfg: ModelConfig) -> list[list[PlannedLayer]]:
    """The encoder's layers, block by block."""
    shape: Shape = tuple(cfg.input_shape)
    blocks, before = [], "image"
    for i, block in enumerate(cfg.encoder, 1):
        label, name, where = f"enc {i}", f"enc{i}", _enc_where(i)
        if isinstance(block, ConvBlock):
            layers = [_conv_layer(block, shape, label, name, "encoder", where)]
        elif isinstance(block, ResidualBlock):
            layers = _residual_layers(block, shape, before, label, name, "encoder", where)
        elif isinstance(block, SpaceToDepthBlock):
            layers = [_space_to_depth_layer(shape, block.size, label, name, where)]
        else:
            layers = [_pool_layer(block, shape, label, name, where)]
        blocks.append(layers)
        shape, before = layers[-1].output_shape, layers[-1].name
    return blocks


def _last_activation(cfg: ModelConfig) -> str:
    convs = [b for b in cfg.encoder if isinstance(b, (ConvBlock, ResidualBlock))]
    return convs[-1].activation if convs else "relu"


def _plan_code(cfg: ModelConfig, shape: Shape) -> tuple[list[PlannedLayer], list[PlannedLayer]]:
    """Flatten -> Dense(latent_dim) for the encoder; Dense(H*W*C) -> Reshape for the decoder.

    A VAE's encoder ends in two Dense heads instead, the mean and the log-variance of its
    Gaussian code, and a Sampling layer (in the VAE model, between encoder and decoder) draws
    z = mean + exp(log_var / 2) * noise.
    """
    flat, latent = _prod(shape), cfg.latent_dim
    flatten = PlannedLayer(
        block="code",
        name="code_flatten",
        kind="Flatten",
        part="encoder",
        input_shape=shape,
        output_shape=(flat,),
    )
    # A linear code: the decoder's first Dense applies the nonlinearity.
    dense = dict(
        block="code",
        kind="Dense",
        part="encoder",
        input_shape=(flat,),
        output_shape=(latent,),
        params=flat * latent + latent,
        activation="linear",
    )
    if cfg.kind == "vae":
        # float32 whatever the policy: exp(log_var) and the KL term overflow bfloat16 early.
        heads = dict(units=latent, dtype="float32")
        encode = [
            flatten,
            PlannedLayer(name="code_mean", options=heads, formula="mean of q(z|x)", **dense),
            PlannedLayer(
                name="code_log_var",
                options=heads,
                source="code_flatten",
                formula="log-variance of q(z|x), from code_flatten",
                **dense,
            ),
            PlannedLayer(
                block="code",
                name="code_sampling",
                kind="Sampling",
                part="vae",
                input_shape=(latent,),
                output_shape=(latent,),
                formula="z = mean + exp(log_var/2) * N(0, 1) noise; the decoder reads z",
            ),
        ]
    else:
        encode = [flatten, PlannedLayer(name="code_dense", options=dict(units=latent), **dense)]
    decode = [
        PlannedLayer(
            block="code",
            name="expand_dense",
            kind="Dense",
            part="decoder",
            input_shape=(latent,),
            output_shape=(flat,),
            params=latent * flat + flat,
            activation=_last_activation(cfg),
            options=dict(units=flat),
        ),
        PlannedLayer(
            block="code",
            name="expand_reshape",
            kind="Reshape",
            part="decoder",
            input_shape=(flat,),
            output_shape=shape,
            options=dict(target_shape=shape),
        ),
    ]
    return encode, decode


def _residual_output(out: PlannedLayer) -> PlannedLayer:
    """The DnCNN head: the image minus the output Conv2D's prediction of what to remove."""
    return PlannedLayer(
        block="out",
        name="residual_output",
        kind="Subtract",
        part="decoder",
        input_shape=out.output_shape,
        output_shape=out.output_shape,
        # float32 whatever the policy, as the output's activation: the difference is the image.
        options=dict(dtype="float32"),
        formula="image - output_conv: the input minus what the model removes",
        source="image",
        merge=out.name,
        merge_shape=out.output_shape,
        role="residual_output",
    )


def plan_model(cfg: ModelConfig) -> Plan:
    """Plan every layer of the autoencoder; UserError (one line) if the shapes cannot work."""
    blocks = _plan_encoder(cfg)
    encoder = [layer for layers in blocks for layer in layers]
    feature_map = encoder[-1].output_shape
    encode_code, decode_code = _plan_code(cfg, feature_map) if cfg.latent_dim else ([], [])
    before = (decode_code or encoder)[-1].name  # what the first decoder block reads
    if cfg.decoder == "mirror":
        decoder = _plan_mirror(cfg, blocks, feature_map, before)
    else:
        decoder = _plan_explicit(cfg, blocks, feature_map, before)
    if cfg.skips != "none" and not any(layer.role == "skip" for layer in decoder):
        raise UserError(
            f"model.skips: {cfg.skips}, but the decoder never comes back to a size the encoder "
            f"had before its last block (the encoder goes "
            f"{' -> '.join(hw(s) for s in reversed(_size_chain(cfg, encoder)))}); use skips: none, "
            f"or add encoder blocks that keep a size before shrinking it"
        )
    last = decoder[-1].output_shape
    channels = cfg.input_shape[2]
    out = _plain_conv(
        last,
        channels,
        cfg.output.kernel_size,
        "out",
        "output_conv",
        activation=cfg.output.activation,
        role="output",
    )
    head = [_residual_output(out)] if cfg.output.residual else []
    code_shape = encode_code[-1].output_shape if encode_code else feature_map
    return Plan(
        input_shape=tuple(cfg.input_shape),
        code_shape=code_shape,
        layers=[*encoder, *encode_code, *decode_code, *decoder, out, *head],
        kind=cfg.kind,
        skips=cfg.skips,
    )
