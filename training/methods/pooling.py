"""The pooled embedding the contrastive and distillation heads read.

The published methods put their heads on the backbone's pooled output: Spec. ResNet-50's global
average pool (2048) and, for a Spec. ViT, the class token after the final norm. ``encoder(x)`` is
that embedding for the published encoders (the shared contract of ``training.models``); an encoder
whose ``forward`` returns a feature map (B, C, h, w) (stand-ins, earlier variants) is average-pooled
over space instead, so the methods need nothing else from an encoder.
"""

from __future__ import annotations

from torch import Tensor, nn


def embedding(encoder: nn.Module, x: Tensor) -> Tensor:
    """(B, bands, H, W) -> (B, C): ``encoder(x)``, spatially averaged when it is a map."""
    out = encoder(x)
    return out.mean(dim=(-2, -1)) if out.dim() == 4 else out
