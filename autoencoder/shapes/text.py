"""The plan as text: the table `autoencoder shapes` prints, and the note on skips."""

from __future__ import annotations

from autoencoder.shapes.arithmetic import FORMULA, Pair, _shape_text, hw
from autoencoder.shapes.plan import Plan, PlannedLayer


def _pair_text(pair: Pair | None) -> str:
    if pair is None:
        return "-"
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _row(layer: PlannedLayer) -> list[str]:
    kind = (
        layer.kind
        + (" +bn" if layer.batch_norm else "")
        + (f" +drop {layer.dropout:g}" if layer.dropout else "")
    )
    return [
        layer.block,
        kind,
        hw(layer.kernel) if layer.kernel else "-",
        _pair_text(layer.strides),
        layer.padding or "-",
        _pair_text(layer.output_padding),
        _pair_text(layer.dilation),
        layer.activation or "-",
        f"{_shape_text(layer.input_shape)}"
        + (f" + {_shape_text(layer.merge_shape)}" if layer.merge_shape else "")
        + f" -> {_shape_text(layer.output_shape)}",
        f"{layer.params:,}",
        layer.formula,
    ]


def skip_note(plan: Plan, denoising: bool | None) -> str | None:
    """Where a skip model's decoder reads the encoder, and what that means; None without skips.

    Args:
      plan: the model's plan.
      denoising: whether data.noise is set (None: not known, e.g. for `autoencoder denoise`).
    """
    if plan.skips == "none":
        return None
    sizes = ", ".join(hw(layer.output_shape) for layer in plan.skip_layers)
    where = (
        f"skips ({plan.skips}): the decoder also reads the encoder's {sizes} activations, "
        f"bypassing the code ({_shape_text(plan.code_shape)})"
    )
    if denoising:
        return f"{where}; trained on noisy inputs, as here, that is the point of them"
    return (
        f"{where}; trained to reconstruct its own clean input (data.noise not set), it can copy "
        f"them through, so its compression means nothing there: skips are for denoising "
        f"(data.noise, or `autoencoder denoise`); use skips: none for a real bottleneck"
    )


def format_plan(plan: Plan, denoising: bool | None = None) -> str:
    """The plan as an aligned table, the transposed-convolution arithmetic, totals and the code.

    Args:
      plan: the model's plan.
      denoising: whether the model is trained on noisy inputs, for the note on skips.
    """
    head = [
        "block",
        "layer",
        "kernel",
        "stride",
        "padding",
        "out_pad",
        "dilation",
        "activation",
        "input -> output",
        "params",
        "size arithmetic",
    ]
    rows = [head] + [_row(layer) for layer in plan.layers]
    widths = [max(len(row[c]) for row in rows) for c in range(len(head))]
    right = {9}  # params
    lines = []
    for row in rows:
        cells = [
            cell.rjust(w) if c in right else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    enc = sum(layer.params for layer in plan.part("encoder"))
    dec = sum(layer.params for layer in plan.part("decoder"))
    ratio = plan.compression
    notes = ["the code is larger than the image"] if ratio < 1 else []
    if plan.skips != "none":
        notes.append("the skips bypass the code")
    if plan.residual:
        notes.append("the residual head's input bypasses the code")
    note = f" ({'; '.join(notes)})" if notes else ""
    gaussian = (
        "; a VAE: each is a Gaussian (mean and log-variance), sampled by the reparameterisation "
        "z = mean + exp(log_var/2) * noise"
        if plan.kind == "vae"
        else ""
    )
    lines += [
        "",
        f"Conv2DTranspose: {FORMULA}; pad = 0 ('valid') or kernel//2 ('same'), "
        f"kernel dilated; out_pad '-' = Keras's default",
        f"parameters: {plan.total_params:,} (encoder {enc:,}, decoder {dec:,})",
        f"code: {_shape_text(plan.code_shape)} = {plan.code_size:,} values{gaussian}; input "
        f"{_shape_text(plan.input_shape)} = {plan.input_size:,} values; compression "
        f"{plan.input_size:,}/{plan.code_size:,} = {ratio:.2f}x{note}",
    ]
    skips = skip_note(plan, denoising)
    if skips:
        lines.append(f"note: {skips}")
    return "\n".join(lines)
