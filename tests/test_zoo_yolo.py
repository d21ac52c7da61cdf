"""YOLOv8 and YOLO11 against Ultralytics 8.4.190's own DetectionModel, built from the
YAMLs the package ships: exact parameters for every scale, MACs as FlopCounterMode
counts them, the same state-dict keys and shapes, strict loading, and the same
training-mode head outputs and eval-mode decoded detections. Also the two detection
ops (dfl, decode_boxes) against the Ultralytics functions they follow."""
import os

import pytest
import torch

import archspec
from conftest import SPECS

os.environ.setdefault("YOLO_OFFLINE", "1")  # nothing is downloaded: the YAMLs ship in the package
ultralytics = pytest.importorskip("ultralytics")
from torch.utils.flop_counter import FlopCounterMode
from ultralytics.nn.modules.block import DFL
from ultralytics.nn.modules.head import Detect
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.tal import dist2bbox, make_anchors

# spec -> (Ultralytics' name for the family's YAML, the Detect layer's index)
FAMILIES = {"yolov8n": ("yolov8{}.yaml", 22), "yolo11n": ("yolo11{}.yaml", 23)}
# Parameters of the n scales: ../shared/REFERENCE.md (and Ultralytics' YAML comments).
PARAMS = {"yolov8n": 3_157_200, "yolo11n": 2_624_080}
# The other scales' figures as the YAMLs' own comments print them; the tests below
# also count them on Ultralytics' models.
SCALE_PARAMS = {
    "yolov8n": {"s": 11_166_560, "m": 25_902_640, "l": 43_691_520, "x": 68_229_648},
    "yolo11n": {"s": 9_458_752, "m": 20_114_688, "l": 25_372_160, "x": 56_966_176},
}
SMALL = (3, 32, 64)  # not square; P5 is 1x2: every level and the attention run, quickly


def reference(spec, scale="n"):
    """Ultralytics' model for a scale of the family (its file name picks the scale)."""
    pattern, _ = FAMILIES[spec]
    return DetectionModel(pattern.format(scale), verbose=False)


def meta_reference(spec, scale="n"):
    """The same on the meta device: nothing allocated. DetectionModel's bias_init reads
    its measured strides as numbers, which meta tensors cannot give, and the biases are
    of no interest here; the strides are then set to what it measures (8, 16, 32)."""
    original = Detect.bias_init
    Detect.bias_init = lambda self: None
    try:
        with torch.device("meta"):
            model = reference(spec, scale)
    finally:
        Detect.bias_init = original
    model.stride = model.model[-1].stride = torch.tensor([8.0, 16.0, 32.0])
    return model


def eval_macs(model, shape):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.empty(1, *shape, device="meta"))
    return counter.get_total_flops() // 2


def built(spec, **keywords):
    return archspec.build(SPECS / f"{spec}.yaml", **keywords)


@pytest.mark.parametrize("spec", FAMILIES)
def test_params_and_macs_are_ultralytics(spec):
    summary = archspec.summarize(SPECS / f"{spec}.yaml")
    assert summary.total_params == PARAMS[spec]
    # DFL's integral weight is a parameter that never trains: Ultralytics' summary
    # prints 16 fewer "gradients" than parameters.
    assert summary.frozen_params == 16
    assert summary.total_macs == eval_macs(meta_reference(spec), (3, 640, 640))
    assert summary.outputs["predictions"] == (1, 84, 8400)
    assert summary.outputs["boxes"] == (1, 64, 8400) and summary.outputs["scores"] == (1, 80, 8400)


@pytest.mark.parametrize("spec", FAMILIES)
@pytest.mark.parametrize("scale", ["s", "m", "l", "x"])
def test_every_scale_is_ultralytics(spec, scale):
    # One file per family: the scale picks Ultralytics' depth, width and channel cap.
    ours = archspec.build(SPECS / f"{spec}.yaml", scale=scale, device="meta")
    theirs = meta_reference(spec, scale)
    assert sum(p.numel() for p in ours.parameters()) == SCALE_PARAMS[spec][scale]
    assert sum(p.numel() for p in theirs.parameters()) == SCALE_PARAMS[spec][scale]
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert sorted(ours_sd) == sorted(theirs_sd)
    for key, value in theirs_sd.items():
        assert ours_sd[key].shape == value.shape, key


@pytest.mark.parametrize("spec", FAMILIES)
def test_the_largest_scale_counts_macs_as_ultralytics_model_does(spec):
    # x: the widest, capped at 512 channels, with C3k in every C3k2 of YOLO11.
    summary = archspec.summarize(SPECS / f"{spec}.yaml", scale="x", input_shape=(3, 128, 128))
    assert summary.total_macs == eval_macs(meta_reference(spec, "x"), (3, 128, 128))


@pytest.mark.parametrize("spec", FAMILIES)
def test_state_dict_keys_are_ultralytics_keys(spec):
    ours, theirs = built(spec, device="meta").state_dict(), meta_reference(spec).state_dict()
    assert sorted(ours) == sorted(theirs)
    assert all(ours[k].shape == v.shape for k, v in theirs.items())
    # Layer by layer (`model.0`, `model.1`, ...) the order is Ultralytics'; only inside
    # a layer may it differ (see the next test).
    assert _layers(ours) == _layers(theirs)
    _, detect = FAMILIES[spec]
    assert list(ours)[-1] == f"model.{detect}.dfl.conv.weight"


def _layers(keys):
    """`model.N` prefixes in the order the keys first reach them."""
    return list(dict.fromkeys(".".join(k.split(".")[:2]) for k in keys))


@pytest.mark.parametrize("spec", FAMILIES)
def test_state_dict_key_order_is_ultralytics(spec):
    assert list(built(spec, device="meta").state_dict()) == list(meta_reference(spec).state_dict())


def randomized(model):
    """Batch-norm statistics and affine terms away from their identity defaults, so that
    a misplaced norm cannot hide."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
    return model


@pytest.fixture(scope="module", params=list(FAMILIES))
def pair(request):
    spec = request.param
    torch.manual_seed(0)
    theirs = randomized(reference(spec))
    # Built for the small input: YOLO11's attention reshapes are sized for it.
    ours = built(spec, input_shape=SMALL)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def test_eval_predictions_agree(pair):
    ours, theirs = pair
    ours.eval()
    theirs.eval()
    x = torch.randn(2, *SMALL)
    with torch.no_grad():
        expected, _ = theirs(x)  # (y, preds)
        got = ours(x)
    # 4*8 + 2*4 + 1*2 = 42 anchors; boxes in pixels (up to a few hundred), then probabilities.
    assert got.shape == expected.shape == (2, 84, 42)
    assert (got - expected).abs().max().item() <= 1e-5 * expected.abs().max().item()


def test_yolov8_built_for_640_runs_at_any_multiple_of_32(pair):
    ours, _ = pair
    if ours.spec_name != "yolov8n":
        pytest.skip("YOLO11's attention reshapes fix the input size it is built for")
    at_640 = built("yolov8n").eval()
    at_640.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, *SMALL)
    with torch.no_grad():
        assert torch.equal(at_640(x), ours.eval()(x))


def test_training_outputs_agree(pair):
    ours, theirs = pair
    ours.train()
    theirs.train()
    x = torch.randn(2, *SMALL)
    predictions, boxes, scores = ours(x)
    preds = theirs(x)  # {"boxes", "scores", "feats"}
    assert ours.output_names() == ("predictions", "boxes", "scores")
    assert (boxes - preds["boxes"]).abs().max().item() <= 1e-5
    assert (scores - preds["scores"]).abs().max().item() <= 1e-5
    # Ultralytics decodes only in eval mode; its decoding of these training outputs:
    decoded = theirs.model[-1]._inference(preds)
    assert (predictions - decoded).abs().max().item() <= 1e-5 * decoded.abs().max().item()
    # The same loss gives the same gradients, and the DFL weight gets none. Gradients
    # are summed in another order where a tensor has several readers (C2f's pieces),
    # so they agree to float rounding, relative to each parameter's largest.
    (boxes.square().mean() + scores.sigmoid().mean()).backward()
    (preds["boxes"].square().mean() + preds["scores"].sigmoid().mean()).backward()
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        if p.requires_grad:
            expected = theirs_params[name].grad
            assert (p.grad - expected).abs().max() <= 1e-4 * expected.abs().max() + 1e-7, name
        else:
            assert name.endswith("dfl.conv.weight") and p.grad is None
    for name, buffer in theirs.named_buffers():
        assert torch.allclose(ours.get_buffer(name).float(), buffer.float(), atol=1e-6), name
    ours.zero_grad()
    theirs.zero_grad()


def test_dfl_is_ultralytics_dfl():
    theirs = DFL(16)
    net = archspec.build(archspec.loads("input: [64, 21]\ngraph:\n  dfl: {op: dfl, bins: 16}\n"))
    # A fresh build holds the integral weight 0..15 already, untrainable, as DFL does.
    assert torch.equal(net.dfl.conv.weight, theirs.conv.weight) and not net.dfl.conv.weight.requires_grad
    assert list(net.state_dict()) == ["dfl.conv.weight"]
    x = torch.randn(3, 64, 21)
    assert torch.equal(net(x), theirs(x))


def test_decode_boxes_is_make_anchors_and_dist2bbox():
    from archspec.ops._detect import decode_boxes  # what the op's node calls

    # Levels that are not square and not halves of one another.
    levels = [torch.randn(2, 6, 5, 7), torch.randn(2, 3, 3, 4), torch.randn(2, 3, 2, 2)]
    distance = torch.rand(2, 4, 5 * 7 + 3 * 4 + 2 * 2) * 5
    # Detect._get_decode_boxes, its DFL aside.
    points, stride_tensor = (a.transpose(0, 1) for a in make_anchors(levels, torch.tensor([8.0, 16.0, 32.0]), 0.5))
    for xywh in (True, False):
        expected = dist2bbox(distance, points.unsqueeze(0), xywh=xywh, dim=1) * stride_tensor
        assert torch.equal(decode_boxes(distance, *levels, strides=(8, 16, 32), xywh=xywh), expected)
