"""A built network on disk: the resolved spec (extends merged, arguments fixed) and
its state dict, in one torch.save file that `load_built` turns back into a module."""
from __future__ import annotations

import torch
import yaml

from .atomic import atomic_output
from .diagnostics import error

FORMAT = "archspec.built/1"


def plain(value):
    """Source-tracking containers as plain dicts and lists, for dumping."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def resolved_text(spec) -> str:
    document = plain(spec.document)
    document.pop("extends", None)
    document["name"] = spec.name
    document["args"] = {k: plain(v) for k, v in spec.args.items()}
    document["input"] = list(spec.input_shape)
    if spec.input_overridden or spec.overrides:
        document.pop("expect", None)  # the figures describe the spec as written, not this variant
    return yaml.safe_dump(document, sort_keys=False)


def save_built(spec, net: torch.nn.Module, path) -> None:
    payload = {"format": FORMAT, "name": spec.name, "spec": resolved_text(spec),
               "state_dict": net.state_dict()}
    with atomic_output(path) as f:
        torch.save(payload, f)


def load_built(path, device=None):
    """The module saved by `archspec build -o FILE`, weights included."""
    from .api import build
    from .spec import loads

    try:
        payload = torch.load(path, map_location=device or "cpu", weights_only=True)
    except FileNotFoundError:
        raise error("E0106", f"no such file: {path}") from None
    except Exception as exc:  # torch raises many kinds for a file that is not its format
        raise error("E0106", f"{path} is not an archspec build: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise error("E0106", f"{path} is not an archspec build ({FORMAT})")
    spec = loads(payload["spec"], name=f"{path}#spec")
    net = build(spec, device=device, check=False)
    net.load_state_dict(payload["state_dict"], strict=True)
    return net
