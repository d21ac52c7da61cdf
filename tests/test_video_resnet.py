"""torchvision's video ResNets (r3d_18, mc3_18, r2plus1d_18) need no op beyond conv, bn,
relu, add and the pools, which take their 3-D form from a (C, T, H, W) input: one spec
builds all three, their state dicts load key for key and the outputs agree."""
import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import archspec

# torchvision's BasicBlock: conv1 = Sequential(conv, bn, relu), conv2 = Sequential(conv, bn),
# the conv being Conv3DSimple (r3d), Conv3DNoTemporal (mc3 after layer1: nothing in time)
# or Conv2Plus1D (r2plus1d), a Sequential of a (1,3,3) conv to `mid` channels, bn, relu and
# a (3,1,1) conv. mc3's shortcut keeps time (stride (1,2,2)), which `project` cannot say (it
# takes one stride for every dimension), so the shortcut is written out.
SPEC = """
archspec: 1
name: video_resnet
args: {variant: r3d, num_classes: 400}
input: [3, 8, 32, 32]
blocks:
  basic:
    args: {inplanes: ~, planes: ~, stride: 1, temporal: true}
    body:
      residual:
        add:
          - conv1:
              - name: "0"
                when: ${variant != 'r2plus1d'}
                op: conv
                out: $planes
                k: "${[3, 3, 3] if temporal else [1, 3, 3]}"
                stride: "${[stride, stride, stride] if temporal else [1, stride, stride]}"
                pad: "${[1, 1, 1] if temporal else [0, 1, 1]}"
                bias: false
              - name: "0"
                when: ${variant == 'r2plus1d'}
                seq:
                  - {op: conv, out: "${inplanes * planes * 27 // (inplanes * 9 + 3 * planes)}",
                     k: [1, 3, 3], stride: [1, $stride, $stride], pad: [0, 1, 1], bias: false}
                  - {op: bn}
                  - {op: relu}
                  - {op: conv, out: $planes, k: [3, 1, 1], stride: [$stride, 1, 1], pad: [1, 0, 0], bias: false}
              - {op: bn, name: "1"}
              - {op: relu, name: "2"}
            conv2:
              - name: "0"
                when: ${variant != 'r2plus1d'}
                op: conv
                out: $planes
                k: "${[3, 3, 3] if temporal else [1, 3, 3]}"
                pad: "${[1, 1, 1] if temporal else [0, 1, 1]}"
                bias: false
              - name: "0"
                when: ${variant == 'r2plus1d'}
                seq:
                  - {op: conv, out: "${inplanes * planes * 27 // (inplanes * 9 + 3 * planes)}",
                     k: [1, 3, 3], pad: [0, 1, 1], bias: false}
                  - {op: bn}
                  - {op: relu}
                  - {op: conv, out: $planes, k: [3, 1, 1], pad: [1, 0, 0], bias: false}
              - {op: bn, name: "1"}
          - downsample:
              when: ${stride != 1 or inplanes != planes}
              seq:
                - {op: conv, out: $planes, k: 1, bias: false,
                   stride: "${[stride, stride, stride] if temporal else [1, stride, stride]}"}
                - {op: bn}
            same: {op: identity, when: "${stride == 1 and inplanes == planes}"}
      relu: {op: relu}
graph:
  stem:
    - {op: conv, out: "${45 if variant == 'r2plus1d' else 64}", stride: [1, 2, 2], bias: false,
       k: "${[1, 7, 7] if variant == 'r2plus1d' else [3, 7, 7]}",
       pad: "${[0, 3, 3] if variant == 'r2plus1d' else [1, 3, 3]}"}
    - {op: bn}
    - {op: relu}
    - {op: conv, out: 64, k: [3, 1, 1], pad: [1, 0, 0], bias: false, when: "${variant == 'r2plus1d'}"}
    - {op: bn, when: "${variant == 'r2plus1d'}"}
    - {op: relu, when: "${variant == 'r2plus1d'}"}
  layer1: {repeat: 2, block: basic, inplanes: 64, planes: 64}
  layer2: {repeat: 2, block: basic, inplanes: 128, planes: 128, temporal: "${variant != 'mc3'}",
           at: {0: {stride: 2, inplanes: 64}}}
  layer3: {repeat: 2, block: basic, inplanes: 256, planes: 256, temporal: "${variant != 'mc3'}",
           at: {0: {stride: 2, inplanes: 128}}}
  layer4: {repeat: 2, block: basic, inplanes: 512, planes: 512, temporal: "${variant != 'mc3'}",
           at: {0: {stride: 2, inplanes: 256}}}
  avgpool: {op: adaptive_avgpool, out: 1}
  flatten: {op: flatten}
  fc: {op: linear, out: $num_classes}
"""

CONSTRUCTORS = {"r3d": torchvision.models.video.r3d_18, "mc3": torchvision.models.video.mc3_18,
                "r2plus1d": torchvision.models.video.r2plus1d_18}


@pytest.mark.parametrize("variant", CONSTRUCTORS)
def test_video_resnets_are_torchvisions(variant):
    spec = archspec.loads(SPEC, variant=variant)
    theirs = CONSTRUCTORS[variant]().eval()
    ours = archspec.build(spec).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert (ours(x) - theirs(x)).abs().max().item() <= 1e-5
        with FlopCounterMode(display=False) as counter:
            theirs(x[:1])
    summary = archspec.summarize(spec)
    assert summary.total_params == sum(p.numel() for p in theirs.parameters())
    assert summary.total_macs == counter.get_total_flops() // 2
