"""The lectures' arithmetic, written once: output sizes, weights, multiply-adds, receptive fields.

These are the formulas a chapter writes out beside the code; the tests check each one
against what PyTorch layers actually do.
"""
from __future__ import annotations

from typing import Iterable

__all__ = ["conv_out_size", "conv_weights", "conv_params", "conv_macs", "linear_params",
           "receptive_field"]


def conv_out_size(size: int, kernel: int, stride: int = 1, padding: int = 0, ceil: bool = False) -> int:
    """O = (I - K + 2P) / S + 1, rounded down (or up, as ``ceil_mode`` pooling does)."""
    span = size - kernel + 2 * padding
    if span < 0:
        raise ValueError(f"a {kernel}x{kernel} window does not fit an input of {size} with padding {padding}")
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + padding:  # PyTorch drops a window starting in the padding
        out -= 1
    return out


def conv_weights(kernel: int | tuple[int, int], in_channels: int, out_channels: int, groups: int = 1) -> int:
    """W_c = K^2 * C * N (each of the N kernels spans all C input channels of its group)."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return kh * kw * (in_channels // groups) * out_channels


def conv_params(kernel, in_channels: int, out_channels: int, groups: int = 1, bias: bool = True) -> int:
    """P_c = W_c + B_c, with one bias per kernel."""
    return conv_weights(kernel, in_channels, out_channels, groups) + (out_channels if bias else 0)


def conv_macs(kernel, in_channels: int, out_channels: int, out_h: int, out_w: int, groups: int = 1) -> int:
    """Multiply-adds: every output element is a dot product of length K^2 * C / groups."""
    return conv_weights(kernel, in_channels, out_channels, groups) * out_h * out_w


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """P_ff = F_-1 * F + F."""
    return in_features * out_features + (out_features if bias else 0)


def receptive_field(layers: Iterable[tuple[int, int]]) -> int:
    """Receptive field (in input pixels) of one output unit of stacked (kernel, stride) layers.

    r_0 = 1 and r_l = r_{l-1} + (k_l - 1) * j_{l-1}, where the jump j is the product of
    the strides so far (Araujo et al., Distill 2019).
    """
    r, jump = 1, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r
