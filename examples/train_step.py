"""One training step of the CIFAR-10 GoogLeNet (article 004) with weighted aux losses.

In training mode the compiled network returns (logits, aux2, aux1); the total loss
adds each auxiliary cross-entropy at weight 0.3, as GoogLeNet's authors did. The data
is a random batch, so the example runs anywhere without downloads.
"""
from pathlib import Path

import torch
import torch.nn.functional as F

import archspec

AUX_WEIGHT = 0.3
SPEC = Path(__file__).resolve().parent.parent / "specs" / "googlenet_cifar.yaml"


def training_step(net, optimizer, images, labels):
    net.train()
    outputs = dict(zip(net.output_names(), net(images)))
    main = F.cross_entropy(outputs["logits"], labels)
    aux = sum(F.cross_entropy(outputs[name], labels) for name in ("aux1", "aux2"))
    loss = main + AUX_WEIGHT * aux
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return main.item(), loss.item()


def main():
    torch.manual_seed(0)
    net = archspec.build(SPEC)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    main_loss, total = training_step(net, optimizer, images, labels)
    print(f"outputs in training: {', '.join(net.output_names(True))}")
    print(f"main loss {main_loss:.3f}, total with 0.3 x aux {total:.3f}")
    net.eval()
    with torch.no_grad():
        print(f"eval output: {tuple(net(images).shape)} (aux heads not computed)")


if __name__ == "__main__":
    main()
