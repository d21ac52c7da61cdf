"""Reshaping without arithmetic: permute, reshape, chunk, select, slice, pad, channel shuffle.

Every `dim` counts the batch as dimension 0, as PyTorch code does. Permute, reshape,
chunk and select return views of their input where PyTorch does (`allocates` is
False), so the forward counts their readers as readers of the input's memory.
"""
from __future__ import annotations

import math

from .base import Arg, Example, Op, OpError
from .join import batched_axis
from .registry import register


def _show(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


@register
class Permute(Op):
    name = "permute"
    doc = "Reorder the dimensions (torch.permute); the batch stays first."
    shape_rule = "the input's sizes in the order `dims` names them (batch dimension 0 left out)"
    args = {"dims": Arg("ints", doc="the whole batched order, starting with 0 (the batch): "
                                    "[0, 2, 3, 1] moves the channels of (C, H, W) last")}
    allocates = False
    examples = (
        Example({"dims": [0, 2, 3, 1]}, ((3, 4, 5),)),
        Example({"dims": [0, 2, 1]}, ((6, 4),)),
        Example({"dims": [0, -1, 1, 2]}, ((2, 3, 4),)),
        Example({"dims": [0, 1, 2]}, ((2, 5),)),
    )

    def _order(self, a, shape) -> tuple:
        dims, rank = a["dims"], len(shape) + 1
        if len(dims) != rank:
            raise OpError("E0407", f"permute `dims` has {len(dims)} entries but the batched input "
                          f"{_show(('N', *shape))} has {rank} dimensions",
                          "name every dimension once, the batch (0) first", arg="dims")
        order = tuple(d + rank if d < 0 else d for d in dims)
        if sorted(order) != list(range(rank)):
            raise OpError("E0408", f"permute `dims` {list(dims)} is not an order of the dimensions 0 to {rank - 1}",
                          "name every dimension once", arg="dims")
        if order[0] != 0:
            raise OpError("E0408", f"permute `dims` {list(dims)} moves the batch dimension",
                          "start `dims` with 0: the batch stays first", arg="dims")
        return order

    def infer(self, a, shapes):
        return tuple(shapes[0][d - 1] for d in self._order(a, shapes[0])[1:])

    def function(self, a, shapes, training, inplace):
        order = self._order(a, shapes[0])
        if order == tuple(range(len(order))):
            return None
        import torch

        return torch.permute, {"dims": order}


@register
class Reshape(Op):
    name = "reshape"
    doc = "Give each sample a new shape with the same elements (torch.reshape; a view where possible)."
    shape_rule = "`shape`, with a -1 replaced by the elements left over"
    args = {"shape": Arg("ints", doc="the per-sample shape, without the batch; one entry may be -1")}
    allocates = False  # a view unless the input's memory is not laid out for one
    examples = (
        Example({"shape": [12, 5]}, ((3, 4, 5),)),
        Example({"shape": [-1, 4]}, ((6, 2, 2),)),
        Example({"shape": [2, 3, -1]}, ((24,),)),
        Example({"shape": [4, 6]}, ((4, 6),)),
    )

    def infer(self, a, shapes):
        target, elements = a["shape"], math.prod(shapes[0])
        if not target:
            raise OpError("E0408", "reshape `shape` is empty", "write the per-sample shape, e.g. [196, 768]",
                          arg="shape")
        if target.count(-1) > 1 or any(size < 1 and size != -1 for size in target):
            raise OpError("E0408", f"reshape `shape` {list(target)} may hold positive sizes and one -1",
                          arg="shape")
        known = math.prod(size for size in target if size != -1)
        if -1 in target:
            if elements % known:
                raise OpError("E0408", f"reshape cannot fill -1 in {list(target)}: the input's "
                              f"{elements} elements are not a multiple of {known}", arg="shape")
            return tuple(elements // known if size == -1 else size for size in target)
        if known != elements:
            raise OpError("E0408", f"reshape to {list(target)} holds {known} elements but each sample "
                          f"has {elements}", "the sizes must multiply to the input's element count",
                          arg="shape")
        return tuple(target)

    def function(self, a, shapes, training, inplace):
        out = self.infer(a, shapes)
        if out == tuple(shapes[0]):
            return None
        from .functional import reshape_batched

        return reshape_batched, {"shape": out}


@register
class Chunk(Op):
    name = "chunk"
    doc = ("One piece of torch.chunk: `torch.chunk(x, chunks, dim)[index]` (ShuffleNetV2's "
           "`x.chunk(2, dim=1)`); a view.")
    shape_rule = ("the input's shape with `dim` of size ceil(size / chunks), or what remains for "
                  "the last piece")
    args = {
        "chunks": Arg("int", doc="how many pieces torch.chunk is asked for"),
        "index": Arg("int", doc="which piece (from 0; negative counts from the last)"),
        "dim": Arg("int", 1, "batched dimension to split (the batch is 0)"),
    }
    allocates = False
    examples = (
        Example({"chunks": 2, "index": 0}, ((6, 4, 4),)),
        Example({"chunks": 2, "index": 1}, ((6, 4, 4),)),
        Example({"chunks": 3, "index": -1, "dim": -1}, ((4, 7),)),
        Example({"chunks": 4, "index": 2}, ((5,),)),
    )

    def _piece(self, a, shape) -> tuple:
        """(axis, start, length) of the piece, as torch.chunk cuts it."""
        axis = batched_axis(self, a["dim"], len(shape))
        size, chunks = shape[axis], a["chunks"]
        if chunks < 1:
            raise OpError("E0408", f"chunk `chunks` must be positive, got {chunks}", arg="chunks")
        step = -(-size // chunks)  # torch.chunk: pieces of ceil(size / chunks), fewer if they run out
        count = -(-size // step)
        index = a["index"] + count if a["index"] < 0 else a["index"]
        if not 0 <= index < count:
            raise OpError("E0408", f"chunk `index` {a['index']} is out of range: torch.chunk cuts "
                          f"{size} into {count} piece{'s' if count != 1 else ''} of up to {step}",
                          arg="index")
        start = index * step
        return axis, start, min(step, size - start)

    def infer(self, a, shapes):
        axis, _, length = self._piece(a, shapes[0])
        out = list(shapes[0])
        out[axis] = length
        return tuple(out)

    def function(self, a, shapes, training, inplace):
        axis, start, length = self._piece(a, shapes[0])
        if length == shapes[0][axis]:
            return None
        import torch

        # The same view torch.chunk returns, without building the other pieces.
        return torch.narrow, {"dim": axis + 1, "start": start, "length": length}


@register
class Select(Op):
    name = "select"
    doc = "One index along a dimension, which is dropped (torch.select; `x[:, 0]` is ViT's class token)."
    shape_rule = "the input's shape without `dim`"
    args = {
        "dim": Arg("int", 1, "batched dimension to index (the batch is 0)"),
        "index": Arg("int", doc="position along `dim` (negative counts from the end)"),
    }
    allocates = False
    examples = (
        Example({"index": 0}, ((5, 8),)),
        Example({"dim": -1, "index": -1}, ((3, 4, 6),)),
        Example({"dim": 2, "index": 1}, ((2, 3, 4, 4),)),
    )

    def infer(self, a, shapes):
        shape = shapes[0]
        if len(shape) < 2:
            raise OpError("E0407", f"op `select` needs an input of rank 2 or more, got {_show(shape)}",
                          "a sample must keep at least one dimension")
        axis = batched_axis(self, a["dim"], len(shape))
        if not -shape[axis] <= a["index"] < shape[axis]:
            raise OpError("E0408", f"select `index` {a['index']} is out of range for size {shape[axis]}",
                          arg="index")
        return shape[:axis] + shape[axis + 1:]

    def function(self, a, shapes, training, inplace):
        import torch

        return torch.select, {"dim": batched_axis(self, a["dim"], len(shapes[0])) + 1, "index": a["index"]}


@register
class Slice(Op):
    name = "slice"
    doc = ("Every `step`-th index from `start` to `end` along one dimension, a view: `x[:, 0::2]` "
           "(Swin's patch merging takes `x[..., 0::2, 1::2, :]` as two slices).")
    shape_rule = "the input's shape with `dim` of size len(range(start, end, step))"
    args = {
        "dim": Arg("int", 1, "batched dimension to slice (the batch is 0)"),
        "start": Arg("int", 0, "first index (negative counts from the end)"),
        "end": Arg("int", None, "index to stop before (negative counts from the end); default: the end"),
        "step": Arg("int", 1, "positive stride"),
    }
    allocates = False
    examples = (
        Example({"dim": 1, "start": 1, "step": 2}, ((4, 5, 3),)),
        Example({"dim": -1, "start": -3, "end": -1}, ((4, 7),)),
        Example({"dim": 2, "start": 0, "end": 9, "step": 3}, ((2, 5, 6),)),
    )

    def _range(self, a, shape) -> tuple:
        """(axis, range of indices) as Python's slice picks them."""
        axis = batched_axis(self, a["dim"], len(shape))
        if a["step"] < 1:
            raise OpError("E0408", f"slice `step` must be positive, got {a['step']}", arg="step")
        picked = range(shape[axis])[a["start"]:a["end"]:a["step"]]
        if not picked:
            raise OpError("E0408", f"slice [{a['start']}:{a['end']}:{a['step']}] of size {shape[axis]} is empty",
                          "a slice must keep at least one index", arg="start")
        return axis, picked

    def infer(self, a, shapes):
        axis, picked = self._range(a, shapes[0])
        out = list(shapes[0])
        out[axis] = len(picked)
        return tuple(out)

    def function(self, a, shapes, training, inplace):
        axis, picked = self._range(a, shapes[0])
        if len(picked) == shapes[0][axis]:
            return None
        from .functional import slice_along

        return slice_along, {"dim": axis + 1, "start": picked.start, "end": picked.stop, "step": picked.step}


@register
class Pad(Op):
    name = "pad"
    doc = ("Pad with a constant, as torch.nn.functional.pad: `pads` lists (before, after) for the "
           "last dimension first, then the one before it (Swin's patch merging pads an odd height "
           "or width of its channels-last map with [0, 0, 0, W % 2, 0, H % 2]).")
    shape_rule = "each padded dimension grown by its before and after"
    args = {
        "pads": Arg("ints", doc="(before, after) pairs, the last dimension first, as F.pad takes them; "
                                "never the batch"),
        "value": Arg("number", 0.0, "what the new elements hold"),
    }
    examples = (
        Example({"pads": [0, 0, 0, 1, 0, 1]}, ((3, 5, 4),)),
        Example({"pads": [1, 2]}, ((3, 4),)),
        Example({"pads": [2, 0, 1, 1], "value": -1.0}, ((2, 3, 3),)),
    )

    def _pairs(self, a, shape) -> list:
        pads = a["pads"]
        if len(pads) % 2 or len(pads) > 2 * len(shape):
            raise OpError("E0408", f"pad `pads` has {len(pads)} entries; it needs (before, after) pairs for at "
                          f"most the {len(shape)} per-sample dimensions", arg="pads")
        if min(pads, default=0) < 0:
            raise OpError("E0408", f"pad `pads` {list(pads)} has a negative entry", "pad only adds; "
                          "cut with `slice`", arg="pads")
        return [tuple(pads[i:i + 2]) for i in range(0, len(pads), 2)]

    def infer(self, a, shapes):
        out = list(shapes[0])
        for offset, (before, after) in enumerate(self._pairs(a, shapes[0])):
            out[-1 - offset] += before + after
        return tuple(out)

    def function(self, a, shapes, training, inplace):
        if not any(a["pads"]):
            return None
        self._pairs(a, shapes[0])
        import torch.nn.functional as F

        return F.pad, {"pad": tuple(a["pads"]), "value": a["value"]}


@register
class ChannelShuffle(Op):
    name = "channel_shuffle"
    doc = ("Interleave `groups` groups of channels (dimension 0), exactly as torchvision's "
           "ShuffleNetV2 `channel_shuffle` (view, transpose, contiguous copy, view).")
    args = {"groups": Arg("int", doc="how many groups the channels split into; must divide them")}
    output_saved_for_backward = False
    examples = (
        Example({"groups": 2}, ((6, 4, 4),)),
        Example({"groups": 3}, ((6, 5),)),
        Example({"groups": 4}, ((8, 2, 3, 3),)),
        Example({"groups": 1}, ((4, 3, 3),)),
    )

    def infer(self, a, shapes):
        shape, groups = shapes[0], a["groups"]
        if groups < 1:
            raise OpError("E0408", f"channel_shuffle `groups` must be positive, got {groups}", arg="groups")
        if shape[0] % groups:
            raise OpError("E0405", f"channels are not divisible by groups: {shape[0]} channels, {groups} groups",
                          "groups must divide the input's channels", arg="groups")
        return shape

    def function(self, a, shapes, training, inplace):
        # One group, or one channel per group, leaves the order as it is; torchvision's
        # code then returns a view of its input, so this op passes the input through.
        if a["groups"] in (1, shapes[0][0]):
            return None
        from .functional import channel_shuffle

        return channel_shuffle, {"groups": a["groups"]}
