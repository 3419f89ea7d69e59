"""``load_encoder(path)``: the encoder of an ``encoder.pt``, ready to embed.

An ``encoder.pt`` is what ``training.pretrain`` writes and ``training.import_checkpoint`` makes
from published weights: a dict with ``model``, ``model_args``, ``bands`` and ``state_dict`` (plus
``release``, ``sensor`` and, when imported, ``imported_from``). It is read with
``torch.load(weights_only=True)``: the file holds tensors and plain values only, so no code from it
runs. The encoder comes back in eval mode; ``encoder(x)`` on a normalised ``(B, bands, 128, 128)``
tensor gives the pooled embedding (2048 for Spec. ResNet-50, the class token after the final norm
for the ViTs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.models.registry import build_encoder

ENCODER_KEYS = ("model", "model_args", "bands", "state_dict")
"""What every ``encoder.pt`` holds at least (besides ``release`` and ``sensor``)."""


class EncoderFileError(ValueError):
    """A file that is not a readable ``encoder.pt``; the message names it and the fix."""


def read_encoder_file(path: Path | str) -> dict[str, Any]:
    """The dict of an ``encoder.pt``, checked to have :data:`ENCODER_KEYS`."""
    path = Path(path)
    if not path.is_file():
        raise EncoderFileError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, or a pickle of other objects
        raise EncoderFileError(
            f"{path}: not a readable encoder.pt ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "write it with `python -m training.pretrain` or `spectralforge import-checkpoint`"
        ) from None
    missing = [k for k in ENCODER_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise EncoderFileError(
            f"{path}: not an encoder.pt (no {', '.join(missing)}); a published checkpoint is converted "
            "first: `spectralforge import-checkpoint SRC --model NAME --out encoder.pt`"
        )
    return state


def encoder_from_state(state: dict[str, Any], path: Path | str = "encoder.pt") -> nn.Module:
    """The encoder of an already-read ``encoder.pt`` dict, every tensor loaded (strict)."""
    encoder = build_encoder(state["model"], int(state["bands"]), **dict(state.get("model_args") or {}))
    try:
        encoder.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise EncoderFileError(
            f"{path}: its weights do not fit {state['model']} {state.get('model_args') or {}} "
            f"({str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else exc}); "
            "re-import it with `spectralforge import-checkpoint`"
        ) from None
    return encoder


def load_encoder(path: Path | str) -> nn.Module:
    """The encoder saved in ``path`` (an ``encoder.pt``), in eval mode on the CPU."""
    return encoder_from_state(read_encoder_file(path), path).eval()
