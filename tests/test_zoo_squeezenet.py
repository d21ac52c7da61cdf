"""specs/squeezenet1_0.yaml and squeezenet1_1.yaml against torchvision (figures from
shared/REFERENCE.md)."""
import pytest
import torchvision

import archspec
from conftest import SPECS
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs

# REFERENCE.md, torchvision 0.29.1 at 3x224x224: parameters, FlopCounterMode / 2.
REFERENCE = {
    "squeezenet1_0": (torchvision.models.squeezenet1_0, 1_248_424, 818_924_576),
    "squeezenet1_1": (torchvision.models.squeezenet1_1, 1_235_496, 349_151_936),
}


def reference(name):
    return lambda: REFERENCE[name][0](weights=None)


@pytest.mark.parametrize("name", REFERENCE)
def test_static_figures(name):
    _, params, macs = REFERENCE[name]
    summary = check_static(name, params, macs, reference(name))
    assert summary.outputs["output"] == (1, 1000)


@pytest.mark.parametrize("name", REFERENCE)
def test_state_dict_keys_and_shapes(name):
    check_keys_on_meta(name, reference(name))


# Both, at full size: they are small, and the two `features` lists are written apart
# (1.1 is not a scale of 1.0), so one passing says nothing of the other.
@pytest.mark.parametrize("name", REFERENCE)
def test_weights_load_and_outputs_agree(name):
    check_weights_and_outputs(name, reference(name))


def test_odd_sizes_round_up_as_torchvision_does():
    # ceil_mode pools: 1.1 at 3x100x100 gives 49 -> 24 -> 12 -> 6 (floor would give 5).
    check_weights_and_outputs("squeezenet1_1", reference("squeezenet1_1"), input_shape=(3, 100, 100))
    compiled = archspec.compile_spec(SPECS / "squeezenet1_1.yaml", input_shape=(3, 100, 100))
    assert compiled.inferred.shape("features.8") == (256, 6, 6)


def test_num_classes_changes_only_the_classifier_conv():
    # 1,235,496 - (512*1000 + 1000) + (512*10 + 10)
    assert archspec.summarize(SPECS / "squeezenet1_1.yaml", num_classes=10).total_params == 1_235_496 - 513_000 + 5_130
