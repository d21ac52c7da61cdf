"""scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), shipped inside
the package, so nothing is downloaded: split once into training and held-out test
images, and shaped to the input a spec takes."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from .errors import TrainingError

DIGITS_SHAPE = (1, 8, 8)
NUM_CLASSES = 10
TEST_FRACTION = 0.2
# The held-out split is the same for every run (every --seed): accuracies compare.
SPLIT_SEED = 0


@dataclass(frozen=True)
class Digits:
    train: TensorDataset
    test: TensorDataset
    note: str | None  # how the images were made to fit the spec's input, if they had to be


def load_digits_split(input_shape=DIGITS_SHAPE, test_fraction: float = TEST_FRACTION) -> Digits:
    """Training and test sets of (image, label), the images shaped as `input_shape`
    (per sample) and standardised with the training images' mean and deviation."""
    from sklearn.datasets import load_digits  # imported here: scipy and sklearn take seconds to import
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images).float().unsqueeze(1) / 16.0  # pixel values are counts 0..16
    labels = torch.from_numpy(digits.target).long()
    train_idx, test_idx = train_test_split(torch.arange(len(labels)).numpy(), test_size=test_fraction,
                                           random_state=SPLIT_SEED, stratify=digits.target)
    train_idx, test_idx = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    mean, std = images[train_idx].mean(), images[train_idx].std()
    images = (images - mean) / std
    shaped, note = fit_to_input(images, tuple(input_shape))
    return Digits(TensorDataset(shaped[train_idx], labels[train_idx]),
                  TensorDataset(shaped[test_idx], labels[test_idx]), note)


def check_input(input_shape) -> None:
    """Raise TrainingError now, before a network is built, if digits cannot fit."""
    fit_to_input(torch.zeros(1, *DIGITS_SHAPE), tuple(input_shape))


def fit_to_input(images: torch.Tensor, input_shape: tuple) -> tuple[torch.Tensor, str | None]:
    """`images` (N, 1, 8, 8) as the spec's input: as they are, flattened to 64
    features, or upsampled (bilinear) to a larger 1- or 3-channel size. Anything else
    would be guesswork, and raises TrainingError."""
    if input_shape == DIGITS_SHAPE:
        return images, None
    if input_shape == (64,):
        return images.flatten(1), None
    if len(input_shape) == 3 and input_shape[0] in (1, 3) and min(input_shape[1:]) >= 8:
        channels, height, width = input_shape
        resized = F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
        note = f"digits upsampled from 1x8x8 to {channels}x{height}x{width} (bilinear) to fit the spec's input"
        return resized.expand(-1, channels, -1, -1).contiguous(), note
    raise TrainingError(
        f"the spec takes input {list(input_shape)}; the digits are 1x8x8 grey images",
        hint="train.py feeds specs whose input is [1, 8, 8] or [64], or [1 or 3, H, W] with H and W at "
             "least 8 (the digits are upsampled); --input 1x8x8 gives a spec that input, if its layers "
             "allow that size")
