"""Lattice gathers: read any window of the plane from one repeat tile, as a few slices.

:func:`gather_window` reads a window from a tile stored as a numpy array, a torch tensor
(CPU or CUDA, differentiable) or a zarr array. It never loops over pixels: a window is cut
into the few rectangles where the lattice map is a plain translation (or, for ``mirror``, a
reflection), and each rectangle is one slice, flipped where the mirror reflects it. Padding
inside the network, tile halos and resampling between scales are all this one gather.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from pipeline.errors import GeometryError
from pipeline.repeat.lattice import Repeat, lattice_form, as_repeat, check_size, spatial_shape


def _intervals(start: int, length: int, period: int) -> list[tuple[int, int, int, int]]:
    """Cut [start, start+length) at multiples of ``period``: (dst offset, src start, n, k), v = k*period + src."""
    out = []
    pos, end = start, start + length
    while pos < end:
        k, src = divmod(pos, period)
        n = min(period - src, end - pos)
        out.append((pos - start, src, n, k))
        pos += n
    return out


class _Piece(NamedTuple):
    """One rectangle of a gather: window[dy:dy+h, dx:dx+w] = tile[sy:sy+h, sx:sx+w], flipped along y/x when set."""

    dy: int
    dx: int
    sy: int
    sx: int
    h: int
    w: int
    flip_y: bool = False
    flip_x: bool = False

    @property
    def flipped(self) -> bool:
        """Whether this piece is a reflection of the tile (mirror), not a translation."""
        return self.flip_y or self.flip_x


def _mirror_intervals(start: int, length: int, period: int) -> list[tuple[int, int, int, bool]]:
    """Cut [start, start+length) of a side reflected at both ends: (dst offset, src start, n, flipped)."""
    out = []
    for dst, src, n, k in _intervals(start, length, period):
        if k % 2:  # an odd copy is the reflection: plane index k*period + r reads tile[period - 1 - r]
            out.append((dst, period - src - n, n, True))
        else:
            out.append((dst, src, n, False))
    return out


def _mirror_plan(tile_h: int, tile_w: int, y0: int, x0: int, height: int, width: int) -> list[list[_Piece]]:
    """The mirror lattice is separable: column strips, each cut into row pieces, each maybe flipped."""
    rows = _mirror_intervals(y0, height, tile_h)
    return [
        [_Piece(dy, dx, sy, sx, h, w, fy, fx) for dy, sy, h, fy in rows]
        for dx, sx, w, fx in _mirror_intervals(x0, width, tile_w)
    ]


def gather_plan(
    repeat: Repeat, tile_h: int, tile_w: int, y0: int, x0: int, height: int, width: int
) -> tuple[bool, list[list[_Piece]]]:
    """(outer_is_x, strips): the window cut into strips along the outer axis, each cut into pieces.

    Within a piece the lattice map is one translation (or reflection), so a piece is one slice of the tile.
    """
    if repeat.kind == "mirror":
        return True, _mirror_plan(tile_h, tile_w, y0, x0, height, width)
    outer_is_x, shear = lattice_form(repeat, tile_w, tile_h)
    if outer_is_x:
        o_start, o_len, o_period, i_start, i_len, i_period = x0, width, tile_w, y0, height, tile_h
    else:
        o_start, o_len, o_period, i_start, i_len, i_period = y0, height, tile_h, x0, width, tile_w
    strips = []
    for od, os_, on, k in _intervals(o_start, o_len, o_period):
        strip = []
        for idst, isrc, inn, _ in _intervals(i_start - k * shear, i_len, i_period):
            if outer_is_x:
                strip.append(_Piece(idst, od, isrc, os_, inn, on))
            else:
                strip.append(_Piece(od, idst, os_, isrc, on, inn))
        strips.append(strip)
    return outer_is_x, strips


def _torch_layout(image: Any) -> Any:
    """channels_last for a 4-D tensor stored that way (the network's layout), else contiguous."""
    import torch

    if image.dim() == 4 and not image.is_contiguous() and image.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _torch_out(image: Any, height: int, width: int) -> Any:
    """An uninitialised torch result that keeps the input's layout, dtype and device."""
    import torch

    shape = (*image.shape[:-2], height, width)
    return torch.empty(shape, dtype=image.dtype, device=image.device, memory_format=_torch_layout(image))


def printed_unit(image: Any, padding: Repeat | None) -> tuple[Any, Repeat | None]:
    """What a network must see to honour ``padding``: a mirror tile becomes its 2W x 2H printed unit, block-padded.

    Reflecting every layer's features is exact only for a network's first convolution (a
    reflected image's features are not reflected features) and leaves a line along the tile's
    edges; the printed unit is an ordinary block repeat. Other repeats pass unchanged.
    """
    if padding is None or as_repeat(padding).kind != "mirror":
        return image, padding
    height, width = image.shape[-2:]
    return gather_window(image, padding, 0, 0, 2 * height, 2 * width), Repeat.BLOCK


def gather_window(image: Any, repeat: Repeat | str, y0: int, x0: int, height: int, width: int) -> Any:
    """The window [y0, y0+height) x [x0, x0+width) of the plane tiled by ``image`` under ``repeat``.

    ``image`` is a torch tensor (..., H, W) or an array-like (H, W, ...) such as numpy or zarr;
    the result has the same kind (numpy for zarr). Torch results keep autograd. A window that is
    one slice of a numpy or torch tile is returned as a view (copy it before writing into it);
    otherwise the result is written once into a fresh array, piece by piece.
    """
    repeat = as_repeat(repeat)
    tile_h, tile_w, channels_first = spatial_shape(image)
    check_size(repeat, tile_w, tile_h)
    if height < 0 or width < 0:
        raise GeometryError(f"window size {width}x{height} is negative")
    outer_is_x, strips = gather_plan(repeat, tile_h, tile_w, y0, x0, height, width)
    pieces = [piece for strip in strips for piece in strip]
    if channels_first:
        if len(pieces) == 1 and not pieces[0].flipped:
            p = pieces[0]
            return image[..., p.sy : p.sy + p.h, p.sx : p.sx + p.w]
        import torch

        if torch.is_grad_enabled() and image.requires_grad and pieces:
            return _lattice_gather()(image, tuple(pieces), (height, width))
        out = _torch_out(image, height, width)
        for p in pieces:
            out[..., p.dy : p.dy + p.h, p.dx : p.dx + p.w] = _torch_piece(image[..., p.sy : p.sy + p.h, p.sx : p.sx + p.w], p)
        return out
    if len(pieces) == 1 and not pieces[0].flipped and isinstance(image, np.ndarray):
        p = pieces[0]
        return image[p.sy : p.sy + p.h, p.sx : p.sx + p.w]
    out = np.empty((height, width, *image.shape[2:]), dtype=image.dtype)
    for p in pieces:
        block = image[p.sy : p.sy + p.h, p.sx : p.sx + p.w]
        out[p.dy : p.dy + p.h, p.dx : p.dx + p.w] = block[:: -1 if p.flip_y else 1, :: -1 if p.flip_x else 1]
    return out


def _torch_piece(block: Any, piece: _Piece) -> Any:
    """A torch slice of the tile, reflected as the piece says (torch has no negative-step slices)."""
    dims = [d for d, flip in ((-2, piece.flip_y), (-1, piece.flip_x)) if flip]
    return block.flip(dims) if dims else block


@lru_cache(maxsize=1)
def _lattice_gather() -> Any:
    """A differentiable gather whose backward adds each piece's gradient into one buffer in place.

    Slicing plus ``torch.cat`` (autograd's default) allocates a full-size zero gradient per
    piece; inside VGG-19 that made lattice padding cost as much as the convolutions. With this
    the padded network runs as fast as the zero-padded one.
    """
    import torch

    class LatticeGather(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, image: Any, pieces: tuple[_Piece, ...], size: tuple[int, int]) -> Any:
            out = _torch_out(image, *size)
            for p in pieces:
                out[..., p.dy : p.dy + p.h, p.dx : p.dx + p.w] = _torch_piece(image[..., p.sy : p.sy + p.h, p.sx : p.sx + p.w], p)
            ctx.pieces = pieces
            ctx.meta = (tuple(image.shape), image.dtype, image.device, _torch_layout(image))
            return out

        @staticmethod
        def backward(ctx: Any, grad: Any) -> tuple[Any, None, None]:
            shape, dtype, device, layout = ctx.meta
            grad_in = torch.empty(shape, dtype=dtype, device=device, memory_format=layout).zero_()
            for p in ctx.pieces:
                grad_in[..., p.sy : p.sy + p.h, p.sx : p.sx + p.w] += _torch_piece(grad[..., p.dy : p.dy + p.h, p.dx : p.dx + p.w], p)
            return grad_in, None, None

    return LatticeGather.apply


def wrap_pad(image: Any, repeat: Repeat | str, pad: int) -> Any:
    """Pad by ``pad`` pixels on every side with the image's own lattice neighbours."""
    tile_h, tile_w, _ = spatial_shape(image)
    return gather_window(image, repeat, -pad, -pad, tile_h + 2 * pad, tile_w + 2 * pad)


def reframe(image: Any, repeat: Repeat | str, from_origin: tuple[int, int], to_origin: tuple[int, int]) -> Any:
    """A level stored in the frame at ``from_origin``, re-stored in the frame at ``to_origin``.

    ``reframe(level, repeat, origin, (0, 0))`` gives the repeat tile as designed (what is printed).
    """
    tile_h, tile_w, _ = spatial_shape(image)
    return gather_window(image, repeat, to_origin[0] - from_origin[0], to_origin[1] - from_origin[1], tile_h, tile_w)


def _lattice_pad_module() -> type:
    import torch
    from torch import nn
    from torch.nn import functional

    class LatticePad2d(nn.Module):
        """Pad a feature map (N, C, H, W) by its repeat lattice: the seamless stand-in for zero padding.

        For ``block`` this equals circular padding; drops and bricks gather with the shift of
        the current map's own size (H/2, H/3 ...), so the shift is honoured at every level of
        the network; ``mirror`` is a reflection with the edge pixel repeated (numpy's
        "symmetric"). All use the in-place-backward gather, which is 2x faster than
        ``F.pad(mode="circular")`` inside VGG-19. ``repeat=None`` gives plain zero padding.
        """

        def __init__(self, repeat: Repeat | str | None, pad: int = 1) -> None:
            super().__init__()
            self.repeat = as_repeat(repeat) if repeat is not None else None
            self.pad = pad

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            p = self.pad
            if self.repeat is None:
                return functional.pad(x, (p, p, p, p))
            return wrap_pad(x, self.repeat, p)

        def extra_repr(self) -> str:
            return f"repeat={self.repeat.value if self.repeat else 'zeros'}, pad={self.pad}"

    return LatticePad2d


def __getattr__(name: str) -> Any:
    # LatticePad2d needs torch; build it on first use so numpy-only users never import torch.
    if name == "LatticePad2d":
        cls = _lattice_pad_module()
        globals()["LatticePad2d"] = cls
        return cls
    raise AttributeError(name)
