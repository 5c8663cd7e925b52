"""Model complexity: parameters, multiply-accumulates per window, a per-block table.

MACs are counted with forward hooks on the layers that carry the arithmetic:

- ``nn.Conv2d``: ``k_h * k_w * (in / groups) * out * H_out * W_out``;
- ``nn.Linear``: ``in * out`` per output row;
- ``nn.LSTM``: ``4 gates * (in + hidden) * hidden`` per step, per direction,
  per layer (``in`` is the previous layer's output width above layer 1);
- any module with a ``macs(inputs, output)`` method counts its own
  products between activations, which carry no parameters and so no hook
  above sees them (the transformer's attention: ``2 L^2 D`` per window).

BatchNorm is not counted (it is folded into the convolution at export), nor
are layer norms, softmax, activations, additions, pooling or biases: they
are small next to the products above. Figures are per window, i.e. for one
input (batch 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pyharmonies.errors import ParameterError

__all__ = ["count_macs", "count_parameters", "summary"]


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (all of them, or only those that require grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _conv_macs(m: nn.Conv2d, out: torch.Tensor) -> int:
    k_h, k_w = m.kernel_size
    return k_h * k_w * (m.in_channels // m.groups) * m.out_channels * out.shape[-2] * out.shape[-1]


def _linear_macs(m: nn.Linear, out: torch.Tensor) -> int:
    rows = out[0].numel() // m.out_features  # positions per sample (1 for a (B, in) input)
    return m.in_features * m.out_features * rows


def _lstm_macs(m: nn.LSTM, inp: torch.Tensor) -> int:
    steps = inp.shape[1] if m.batch_first else inp.shape[0]
    directions = 2 if m.bidirectional else 1
    hidden = m.hidden_size
    total = 0
    for layer in range(m.num_layers):
        layer_in = m.input_size if layer == 0 else hidden * directions
        total += directions * steps * 4 * (layer_in + hidden) * hidden
    return total


def _module_macs(m: nn.Module, inputs: tuple, out: object) -> int:
    if isinstance(m, nn.Conv2d):
        return _conv_macs(m, out)  # type: ignore[arg-type]
    if isinstance(m, nn.Linear):
        return _linear_macs(m, out)  # type: ignore[arg-type]
    if isinstance(m, nn.LSTM):
        return _lstm_macs(m, inputs[0])
    if _counts_itself(m):
        return int(m.macs(inputs, out))  # type: ignore[operator]
    return 0


_COUNTED = (nn.Conv2d, nn.Linear, nn.LSTM)


def _counts_itself(m: nn.Module) -> bool:
    return callable(getattr(m, "macs", None))


def _resolve_shape(model: nn.Module, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    if input_shape is None:
        example = getattr(model, "example_input", None)
        if example is None:
            raise ParameterError(f"{type(model).__name__} has no example_input(); pass input_shape (with the batch)")
        return tuple(example(1).shape)
    shape = tuple(int(v) for v in input_shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ParameterError(f"input_shape must include the batch and be positive, got {input_shape!r}")
    return shape


def _trace(model: nn.Module, shape: tuple[int, ...], rows: dict[str, nn.Module] | None = None):
    """Run one zero input through ``model`` in eval mode; per counted layer, its MACs per sample.

    Returns ``(macs by layer name, output shape by row name)``.
    """
    macs: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, _COUNTED) or _counts_itself(m):

            def hook(mod, inputs, out, name=name):
                # Hooks see the whole batch; every formula above is per sample already.
                macs[name] = macs.get(name, 0) + _module_macs(mod, inputs, out)

            handles.append(m.register_forward_hook(hook))
    for row, m in (rows or {}).items():

        def shape_hook(mod, inputs, out, row=row):
            out = out[0] if isinstance(out, tuple) else out
            shapes[row] = (1, *out.shape[1:])

        handles.append(m.register_forward_hook(shape_hook))
    modes = {m: m.training for m in model.modules()}  # per module: a frozen backbone may sit in eval mode
    model.eval()
    try:
        with torch.no_grad():
            param = next(model.parameters(), None)
            device = param.device if param is not None else None
            model(torch.zeros(shape, device=device))
    finally:
        for m, training in modes.items():
            m.training = training
        for h in handles:
            h.remove()
    return macs, shapes


def count_macs(model: nn.Module, input_shape_with_batch: Sequence[int] | None = None) -> int:
    """Multiply-accumulates of one forward pass for one window.

    Parameters
    ----------
    model : nn.Module
    input_shape_with_batch : sequence of int, optional
        The shape of the model's input, batch included, e.g. ``(1, 1, 64, 129)``
        for the CNN or ``(1, 28, 129)`` for the LSTM; the count is per window
        whatever the batch. Default: the shape of ``model.example_input(1)``.
    """
    macs, _ = _trace(model, _resolve_shape(model, input_shape_with_batch))
    return sum(macs.values())


def _rows(model: nn.Module) -> dict[str, nn.Module]:
    """The table's rows: each top-level child, with Sequential children (the backbone) opened one level."""
    rows: dict[str, nn.Module] = {}
    for name, child in model.named_children():
        grandchildren = list(child.named_children())
        if grandchildren and (isinstance(child, nn.Sequential) or name == "backbone"):
            for sub, m in grandchildren:
                rows[f"{name}.{sub}"] = m
        else:
            rows[name] = child
    return rows


def summary(model: nn.Module, input_shape: Sequence[int] | None = None) -> str:
    """A table per block: output shape, parameters, MACs per window; totals at the bottom.

    ``input_shape`` includes the batch, as for :func:`count_macs` (default: the
    shape of ``model.example_input(1)``).
    """
    shape = _resolve_shape(model, input_shape)
    rows = _rows(model)
    macs, shapes = _trace(model, shape, rows)
    table = []
    for row, m in rows.items():
        row_macs = sum(v for k, v in macs.items() if k == row or k.startswith(row + "."))
        out = "x".join(str(v) for v in shapes.get(row, ())) or "-"
        table.append((row, type(m).__name__, out, f"{count_parameters(m):,}", f"{row_macs:,}"))
    total = (
        "total",
        type(model).__name__,
        "x".join(map(str, shape)),
        f"{count_parameters(model):,}",
        f"{sum(macs.values()):,}",
    )
    header = ("block", "type", "output", "params", "MACs")
    widths = [max(len(r[i]) for r in (header, total, *table)) for i in range(5)]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))

    rule = "-" * len(fmt(header))
    lines = [fmt(header), rule, *map(fmt, table), rule, fmt(total)]
    return "\n".join(lines)
