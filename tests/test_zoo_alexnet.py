"""specs/alexnet.yaml against torchvision's alexnet (figures from shared/REFERENCE.md)."""
import archspec
import torchvision

from conftest import SPECS
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs

# REFERENCE.md, torchvision 0.29.1 at 3x224x224: parameters, FlopCounterMode / 2.
PARAMS, FCM_MACS = 61_100_840, 714_188_480


def alexnet(**kwargs):
    return torchvision.models.alexnet(weights=None, **kwargs)


def test_static_figures():
    summary = check_static("alexnet", PARAMS, FCM_MACS, alexnet)
    assert summary.outputs["output"] == (1, 1000)


def test_state_dict_keys_and_shapes():
    check_keys_on_meta("alexnet", alexnet)


def test_weights_load_and_outputs_agree():
    check_weights_and_outputs("alexnet", alexnet)


def test_other_input_sizes_meet_the_classifier_at_6x6():
    # The adaptive pool gives 256 * 6 * 6 = 9216 features whatever the input size, so the
    # same weights serve 127x127 (features end at 3x3) as 224x224; the conv MACs shrink
    # with the area, the classifier's 9216*4096 + 4096*4096 + 4096*1000 = 58,621,952 stay.
    check_weights_and_outputs("alexnet", alexnet, input_shape=(3, 127, 127))
    small = archspec.summarize(SPECS / "alexnet.yaml", input_shape=(3, 127, 127))
    assert small.total_params == PARAMS
    assert 58_621_952 < small.total_macs < FCM_MACS


def test_num_classes_changes_only_the_last_layer():
    # 61,100,840 - (4096*1000 + 1000) + (4096*10 + 10)
    assert archspec.summarize(SPECS / "alexnet.yaml", num_classes=10).total_params == 61_100_840 - 4_097_000 + 40_970
