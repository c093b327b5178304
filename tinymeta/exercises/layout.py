"""The blocks of tinymeta's flat parameter vector (W1, b1, W2, ...), so a hint can name them."""

from __future__ import annotations

from ..params import layer_shapes


def blocks(sizes):
    """``[("W1", slice, (d_0, d_1)), ("b1", slice, None), ...]`` in the layout of ``tinymeta.params``."""
    out, offset = [], 0
    for l, (d_in, d_out) in enumerate(layer_shapes(sizes), 1):
        out += [
            (f"W{l}", slice(offset, offset + d_in * d_out), (d_in, d_out)),
            (f"b{l}", slice(offset + d_in * d_out, offset + (d_in + 1) * d_out), None),
        ]
        offset += (d_in + 1) * d_out
    return out
