"""Multiply-accumulates per image of the published models, counted with forward hooks on ``meta``.

    .venv/bin/python benchmarks/macs.py [--models spec_resnet50,spec_vit_s,...] [--bands 202] [--px 128]
        [--steps spec_resnet50:moco,spec_vit_s:mae,...]

Why: the cost table in the README must follow the architectures (the published Spec. ResNet-50's
stride-2 first block halves the compute of our earlier output-stride-8 variant). The counter adds,
per forward on one image: Conv (out elements x in channels / groups x kernel volume), Linear (out
elements x in features) and the two attention matmuls of every block (2 x N^2 x D). Normalisation,
activations, softmax and pooling are left out (under 1 % here). Everything runs on the ``meta``
device: shapes only, no memory and seconds for ViT-g. FLOPs are 2x MACs.

``--steps model:method,...`` also counts one pretraining step per location (forward and backward of
the method as ``training.recipes`` builds it, on two views of one location, without the
augmentation) with ``torch.utils.flop_counter``, also on ``meta``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.models.registry import build_encoder, count_parameters
from training.models.vit import Attention
from training.recipes import recipe

DEFAULT_MODELS = (
    "spec_resnet50,spec_resnet50_dilated,spec_resnet50_os8,"
    "spec_vit_s,spec_vit_b,spec_vit_l,spec_vit_h,spec_vit_g"
)
DEFAULT_STEPS = "spec_resnet50:moco,spec_vit_s:moco,spec_resnet50:dino,spec_vit_s:dino,spec_vit_s:mae"


def _module_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d | nn.Conv3d):
        kernel = math.prod(module.kernel_size)
        return output.numel() * (module.in_channels // module.groups) * kernel
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, Attention):
        b, n, d = inputs[0].shape
        return 2 * b * n * n * d  # Q K^T and softmax(.) V over all heads
    return 0


def count_macs(model: nn.Module, images: torch.Tensor, call: str = "forward") -> int:
    """MACs of ``model.<call>(images)`` for the whole batch (hooks on Conv, Linear, Attention)."""
    total = [0]

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        total[0] += _module_macs(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            getattr(model, call)(images)
    finally:
        for h in handles:
            h.remove()
    return total[0]


def step_flops(model: str, method: str, bands: int, px: int) -> float:
    """FLOPs of one pretraining step per location (batch of 2, halved: BatchNorm needs 2 samples)."""
    with torch.device("meta"):
        trained = recipe(method).build(build_encoder(model, bands), bands)
        view1, view2 = torch.empty(2, bands, px, px), torch.empty(2, bands, px, px)
        with FlopCounterMode(display=False) as counter:
            if method in ("mae", "spectral_mae"):
                loss = trained(view1)
            elif method == "dino":
                loss = trained([view1, view2], [])
            else:
                loss = trained(view1, view2)
            loss.backward()
    return counter.get_total_flops() / 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--bands", type=int, default=202)
    parser.add_argument("--px", type=int, default=128)
    parser.add_argument("--steps", default=DEFAULT_STEPS, help="model:method pairs; empty: none")
    args = parser.parse_args(argv)
    print(f"per {args.px} x {args.px} x {args.bands} image, forward (a training step is about 3x)")
    print(f"{'model':<24} {'params':>14} {'GMAC':>8} {'GFLOP':>8} {'adapter GMAC':>13}")
    result = {}
    for name in args.models.split(","):
        with torch.device("meta"):
            model = build_encoder(name, args.bands)
            images = torch.empty(1, args.bands, args.px, args.px)
            call = "forward_features" if name.endswith("_dilated") else "forward"
            macs = count_macs(model, images, call)
            adapter = count_macs(model.adapter, images) if model.adapter is not None else 0
        params = count_parameters(model)
        print(f"{name:<24} {params:>14,} {macs / 1e9:>8.2f} {2 * macs / 1e9:>8.2f} {adapter / 1e9:>13.3f}")
        result[f"{name}_gmac"] = round(macs / 1e9, 2)
    if args.steps:
        print(f"{'model':<24} {'method':<8} {'GFLOP per location and step':>28}")
    for pair in filter(None, args.steps.split(",")):
        model, method = pair.split(":")
        flops = step_flops(model, method, args.bands, args.px)
        print(f"{model:<24} {method:<8} {flops / 1e9:>28.1f}")
        result[f"{model}_{method}_step_gflop"] = round(flops / 1e9, 1)
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
