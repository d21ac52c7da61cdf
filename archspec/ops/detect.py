"""Decoding a dense detection head's box regression, as Ultralytics' YOLO heads do:
the distribution over distance bins (DFL), and distances from anchor points to boxes.

The convolution branches, the flattening and concatenation of the levels and the class
sigmoid are ordinary ops; these two are what those cannot say: a fixed integral
convolution (its weight is 0, 1, ..., bins-1 and never trains), and anchor points laid
on each level's grid, whose sizes are read from the level maps at run time.
"""
from __future__ import annotations

from .base import Arg, Example, Op, OpError
from .registry import register


def _sequence(op: Op, shape, what: str = "input") -> tuple[int, int]:
    if len(shape) != 2:
        raise OpError("E0407", f"op `{op.name}` needs a (C, A) {what}: channels by anchors, got {list(shape)}",
                      "flatten each level's map (`{op: reshape, shape: [C, -1]}`) and concatenate the "
                      "levels on dim 2")
    return shape


@register
class DFL(Op):
    name = "dfl"
    doc = ("Distribution focal loss integral (Ultralytics' `DFL`): the channels of a (sides * bins, A) "
           "map split into `sides` distributions over `bins`, each softmaxed and reduced to its "
           "expectation by a fixed 1x1 convolution whose weight is 0, 1, ..., bins-1 (module `conv`, "
           "no bias, requires_grad False), as x.view(b, sides, bins, a).transpose(2, 1).softmax(1) "
           "then conv, viewed as (sides, A).")
    shape_rule = "(C / bins, A): one expected distance per side and anchor"
    mac_rule = "bins x (C / bins) x A (the 1x1 convolution from bins channels to one)"
    args = {"bins": Arg("int", 16, "bins per distribution (Ultralytics' reg_max)")}
    output_saved_for_backward = False
    examples = (
        Example({}, ((64, 21),)),              # YOLOv8's head: 4 sides x 16 bins, 21 anchors
        Example({"bins": 8}, ((32, 5),)),
        Example({"bins": 5}, ((10, 3),)),      # two sides
    )

    def _sides(self, a, shape) -> int:
        channels, _ = _sequence(self, shape)
        if a["bins"] < 1:
            raise OpError("E0408", f"dfl `bins` must be positive, got {a['bins']}", arg="bins")
        if channels % a["bins"]:
            raise OpError("E0408", f"dfl: {channels} channels are not a whole number of distributions of "
                          f"{a['bins']} bins", "the input has sides * bins channels (4 * 16 in YOLO)",
                          arg="bins")
        return channels // a["bins"]

    def infer(self, a, shapes):
        return (self._sides(a, shapes[0]), shapes[0][1])

    def params(self, a, shapes, out):
        return a["bins"]

    def macs(self, a, shapes, out):
        return shapes[0][0] * shapes[0][1]  # bins x sides x anchors

    def module(self, a, shapes, factory):
        from ._detect import DistributionIntegral

        return DistributionIntegral(a["bins"], self._sides(a, shapes[0]), **factory)


@register
class DecodeBoxes(Op):
    name = "decode_boxes"
    doc = ("Boxes from (left, top, right, bottom) distances to anchor points, as Ultralytics' Detect "
           "decodes them: anchors at the cell centres of each level map's grid (make_anchors, in "
           "level order, row by row), dist2bbox, then times each level's stride. The first input is "
           "the (4, A) distances; the others are the level maps, which lend their height and width "
           "(read at run time, so any input size works).")
    shape_rule = "(4, A), A = the sum of the level maps' H x W"
    args = {
        "strides": Arg("ints", doc="one stride per level map, in pixels of the network input: [8, 16, 32]"),
        "offset": Arg("number", 0.5, "where an anchor sits in its cell (make_anchors' grid_cell_offset)"),
        "xywh": Arg("bool", True, "boxes as (centre x, centre y, width, height); false: (x1, y1, x2, y2)"),
    }
    inputs = (2, None)
    output_saved_for_backward = False
    examples = (
        Example({"strides": [8, 16, 32]}, ((4, 84), (6, 8, 8), (5, 4, 4), (3, 2, 2))),
        Example({"strides": [4], "xywh": False, "offset": 0.0}, ((4, 12), (2, 3, 4))),
    )

    def _check(self, a, shapes):
        channels, anchors = _sequence(self, shapes[0], "first input")
        if channels != 4:
            raise OpError("E0407", f"decode_boxes needs 4 distances per anchor (left, top, right, bottom), "
                          f"got {channels}", "decode a dfl's output, (4, A)")
        levels = shapes[1:]
        for shape in levels:
            if len(shape) != 3:
                raise OpError("E0407", f"decode_boxes: a level map must be (C, H, W), got {list(shape)}")
        if len(a["strides"]) != len(levels):
            raise OpError("E0408", f"decode_boxes has {len(levels)} level map(s) but {len(a['strides'])} "
                          "stride(s)", "give one stride per level", arg="strides")
        if min(a["strides"]) < 1:
            raise OpError("E0408", f"decode_boxes `strides` must be positive, got {list(a['strides'])}",
                          arg="strides")
        grid = sum(h * w for _, h, w in levels)
        if grid != anchors:
            raise OpError("E0402", f"decode_boxes: the level maps hold {grid} cells but the distances "
                          f"cover {anchors} anchors", "pass the level maps the distances were computed on")
        return shapes[0]

    def infer(self, a, shapes):
        return self._check(a, shapes)

    def function(self, a, shapes, training, inplace):
        from ._detect import decode_boxes

        return decode_boxes, {"strides": tuple(a["strides"]), "offset": a["offset"], "xywh": a["xywh"]}
