"""Published SpectralEarth weights -> our ``encoder.pt`` (``spectralforge import-checkpoint``).

Reads the files the authors publish or their training code writes (``../shared/RECIPE.md``,
"Checkpoints as they are found"):

========  ===========================================================  ====================
layout    what the file is                                             ``--branch``
========  ===========================================================  ====================
plain     a released backbone state dict: ``spectral_adapter.*``,      (none)
          ``resnet.*`` / ``vit_core.*``; the classifier ``resnet.fc.*``
          / ``vit_core.head.*`` is dropped
moco      Lightning ``ckpt["state_dict"]``: ``backbone.*`` (query),    ``query`` (default),
          ``backbone_momentum.*`` (key encoder); ``projection_head.*``, ``key``
          ``criterion.bank*`` dropped
dino      ``teacher_backbone.*``, ``student_backbone.*``; heads and    ``teacher`` (default:
          ``criterion.center`` dropped                                 DINO exports the
                                                                       teacher), ``student``
mae       ``encoder.vit.spec_vit.*`` (the backbone); the aliases       (none)
          ``encoder.vit.vit_core.*``, ``encoder.vit.patch_embed.*``,
          ``encoder.mask_token`` and ``decoder.*`` dropped
========  ===========================================================  ====================

``--layout auto`` (default) tells them apart by their keys. The conversion is strict: every
tensor of the encoder (``build_encoder(--model, --bands)``) must be in the file with its shape, and
nothing but the dropped parts may be left over; otherwise one error names the first missing,
mismatched or unexpected key and what the file looks like instead (its layout, architecture and
width). The file is read with ``torch.load(weights_only=True)`` first, so no code in it runs; a
checkpoint that pickles other Python objects (some Lightning hyper-parameters) is refused unless
``--trust-pickle`` is given for a file one trusts. Nothing is written unless the conversion
succeeds: ``--out`` appears whole (atomically) or not at all.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from training import checkpoints
from training.models.loading import ENCODER_KEYS
from training.models.registry import build_encoder
from training.models.vit import VIT_SIZES

LAYOUTS = ("auto", "plain", "moco", "dino", "mae")
BRANCHES: dict[str, dict[str, str]] = {
    "plain": {"backbone": ""},
    "moco": {"query": "backbone.", "key": "backbone_momentum."},
    "dino": {"teacher": "teacher_backbone.", "student": "student_backbone."},
    "mae": {"encoder": "encoder.vit.spec_vit."},
}
"""Per layout: branch -> the key prefix of its backbone. The first branch is the default."""
DEFAULT_BRANCH = {layout: next(iter(branches)) for layout, branches in BRANCHES.items()}
DROPPED = ("resnet.fc.", "vit_core.head.")
"""Classifier heads of the released backbones: not part of an encoder."""
LIGHTNING = {"moco": "MoCo", "dino": "DINO", "mae": "MAE"}
BACKBONE_PREFIXES = ("spectral_adapter.", "resnet.", "vit_core.")
PUBLISHED_BANDS = 202


class CheckpointImportError(ValueError):
    """A file that cannot become the requested encoder; the message names the file and the fix."""


@dataclass
class ImportResult:
    out: Path
    sha256: str
    """Of the written ``encoder.pt``."""
    layout: str
    branch: str
    tensors: int


def read_checkpoint(path: Path, trust_pickle: bool = False) -> Any:
    """The unpickled file: ``weights_only=True`` first (tensors and plain values, no code runs);
    the full unpickler only with ``trust_pickle``."""
    if not path.is_file():
        raise CheckpointImportError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).splitlines()[0][:240] if str(exc) else type(exc).__name__
        if "Weights only load failed" not in str(exc) or "GLOBAL" not in str(exc).upper():
            raise CheckpointImportError(
                f"{path}: not a readable PyTorch checkpoint, truncated or another format ({first}); "
                "download it again and check its size and checksum"
            ) from None
        if not trust_pickle:
            raise CheckpointImportError(
                f"{path}: pickles Python objects besides tensors, so it was not loaded with "
                "torch.load(weights_only=True); if you trust the file, add --trust-pickle (it runs code "
                "from the file)"
            ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CheckpointImportError(f"{path}: cannot be unpickled ({type(exc).__name__}: {exc})") from None


def tensors_of(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The file's flat name -> tensor dict: ``obj["state_dict"]`` of a Lightning checkpoint or of
    an ``encoder.pt``, else ``obj`` itself; anything else is not a state dict."""
    inner = obj.get("state_dict") if isinstance(obj, Mapping) else None
    table = inner if isinstance(inner, Mapping) else obj
    if not isinstance(table, Mapping) or not table:
        raise CheckpointImportError(
            f"{path}: holds {_kind(obj)}, not a state dict (name -> tensor) nor a Lightning checkpoint "
            "with one under 'state_dict'; pass the backbone's .pth/.ckpt file"
        )
    bad = next((k for k, v in table.items() if not isinstance(k, str) or not torch.is_tensor(v)), None)
    if bad is not None:
        raise CheckpointImportError(
            f"{path}: holds a dict whose entry {bad!r} is {_kind(table[bad])}, not a tensor: not a state "
            "dict; pass the backbone's .pth/.ckpt file"
        )
    return dict(table)


def detect_layout(tensors: Mapping[str, torch.Tensor]) -> str | None:
    """The layout the keys say (``None``: no known prefix)."""
    keys = list(tensors)
    if any(k.startswith("encoder.vit.spec_vit.") for k in keys):
        return "mae"
    if any(k.startswith(("teacher_backbone.", "student_backbone.")) for k in keys):
        return "dino"
    if any(k.startswith(("backbone.", "backbone_momentum.")) for k in keys):
        return "moco"
    if any(k.startswith(BACKBONE_PREFIXES) for k in keys):
        return "plain"
    return None


def backbone_of(
    tensors: Mapping[str, torch.Tensor], layout: str, branch: str, path: Path
) -> dict[str, torch.Tensor]:
    """The branch's tensors with its prefix removed; the other branches, heads and aliases dropped."""
    prefix = BRANCHES[layout][branch]
    out = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
    if not prefix:
        out = {k: v for k, v in out.items() if k.startswith(BACKBONE_PREFIXES)}
    if not out:
        raise CheckpointImportError(
            f"{path}: no key starts with {prefix or ' or '.join(BACKBONE_PREFIXES)!r} (the {branch} of a "
            f"{layout} checkpoint); it {describe(tensors)}"
        )
    return {k: v for k, v in out.items() if not k.startswith(DROPPED)}


def fill(
    target: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], path: Path, what: str, model: str
) -> dict[str, torch.Tensor]:
    """``target``'s keys, each from ``found`` with the same shape and dtype kind; the first missing,
    mismatched or left-over key is an error that says what the file holds instead."""
    for key, want in target.items():
        if key not in found:
            raise CheckpointImportError(
                f"{path}: {what} has no {key!r}, which {model} needs; it {describe(found, layout_hint=False)}"
            )
        have = found[key]
        if tuple(have.shape) != tuple(want.shape):
            raise CheckpointImportError(
                f"{path}: {what} has {key!r} of shape {tuple(have.shape)}, {model} needs "
                f"{tuple(want.shape)}; it {describe(found, layout_hint=False)}"
            )
    extra = next((k for k in found if k not in target), None)
    if extra is not None:
        raise CheckpointImportError(
            f"{path}: {what} has {extra!r}, which {model} does not have (another architecture or depth); "
            f"it {describe(found, layout_hint=False)}"
        )
    return {k: found[k].to(want.dtype).clone() for k, want in target.items()}


def describe(tensors: Mapping[str, torch.Tensor], layout_hint: bool = True) -> str:
    """What a key table looks like: its top-level key families, the layout they suggest (unless
    ``layout_hint`` is off: a backbone already taken out of its file), and the backbone's
    architecture and width where they can be read off the shapes."""
    families = list(dict.fromkeys(k.split(".")[0] for k in tensors))
    shown = ", ".join(f"{f}.*" for f in families[:6]) + (", ..." if len(families) > 6 else "")
    layout = detect_layout(tensors) if layout_hint else None
    parts = [f"holds keys {shown}"]
    if layout in LIGHTNING:
        parts.append(f"a {LIGHTNING[layout]} Lightning checkpoint, try --layout {layout}")
        tensors = {k.removeprefix(BRANCHES[layout][DEFAULT_BRANCH[layout]]): v for k, v in tensors.items()}
    elif layout == "plain":
        parts.append("a plain backbone state dict (--layout plain)")
    arch = architecture(tensors)
    if arch:
        parts.append(arch)
    return ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")


def architecture(tensors: Mapping[str, torch.Tensor]) -> str:
    """``"a Spec. ViT 384 wide, 12 blocks (try --model spec_vit_s)"`` and the like; ``""`` when the
    keys are no backbone of ours."""
    proj = tensors.get("vit_core.patch_embed.proj.weight")
    if proj is not None:
        width = proj.shape[0]
        depth = len({k.split(".")[2] for k in tensors if k.startswith("vit_core.blocks.")})
        names = [
            f"spec_vit_{s}" for s, size in VIT_SIZES.items() if (size.embed_dim, size.depth) == (width, depth)
        ]
        hint = f" (try --model {names[0]})" if names else ""
        return f"a Spec. ViT {width} wide with {depth} blocks and {proj.shape[1]} input channels{hint}"
    first = tensors.get("resnet.layer1.0.conv1.weight")
    if first is not None:
        last = tensors.get("resnet.layer4.2.conv3.weight")
        out = f", {last.shape[0]} output channels" if last is not None else ""
        return (
            f"a Spec. ResNet (first block {first.shape[1]}->{first.shape[0]}{out}; try --model spec_resnet50)"
        )
    return ""


def bands_recorded(obj: Any) -> int | None:
    """The band count the file records: ``bands`` of an ``encoder.pt``, or an integer
    hyper-parameter whose name says bands (``bands``, ``num_bands`` ...) of a Lightning checkpoint."""
    if not isinstance(obj, Mapping):
        return None
    if isinstance(obj.get("bands"), int):
        return obj["bands"]
    hparams = obj.get("hyper_parameters")
    stack = [hparams] if isinstance(hparams, Mapping) else []
    while stack:
        for key, value in stack.pop().items():
            if isinstance(value, Mapping):
                stack.append(value)
            elif isinstance(key, str) and "band" in key.lower() and isinstance(value, int) and value > 1:
                return value
    return None


def convert(
    src: Path,
    model: str,
    layout: str = "auto",
    branch: str | None = None,
    bands: int = PUBLISHED_BANDS,
    model_args: dict[str, Any] | None = None,
    sensor: str = "enmap",
    trust_pickle: bool = False,
) -> dict[str, Any]:
    """The ``encoder.pt`` dict for ``src`` (nothing written); raises :class:`CheckpointImportError`."""
    if layout not in LAYOUTS:
        raise CheckpointImportError(f"{src}: unknown --layout {layout!r}; known: {', '.join(LAYOUTS)}")
    model_args = dict(model_args or {})
    try:
        with torch.device("meta"):  # only the names, shapes and dtypes are needed: no weights made
            target = build_encoder(model, bands, **model_args).state_dict()
    except KeyError as exc:
        raise CheckpointImportError(f"{src}: {exc.args[0]}") from None
    obj = read_checkpoint(src, trust_pickle)
    tensors = tensors_of(obj, src)
    found = detect_layout(tensors)
    if layout == "auto":
        if found is None:
            raise CheckpointImportError(
                f"{src}: none of the known key prefixes ({', '.join(_known_prefixes())}); it "
                f"{describe(tensors)}. Not a published SpectralEarth backbone or MoCo/DINO/MAE checkpoint"
            )
        layout = found
    elif found != layout:
        seen = f"looks like {found}" if found else "has none of the known prefixes"
        raise CheckpointImportError(f"{src}: --layout {layout}, but it {seen}; it {describe(tensors)}")
    branch = branch or DEFAULT_BRANCH[layout]
    if branch not in BRANCHES[layout]:
        raise CheckpointImportError(
            f"{src}: --branch {branch!r} is not one of a {layout} checkpoint: {', '.join(BRANCHES[layout])}"
        )
    recorded = bands_recorded(obj)
    if recorded is not None and recorded != bands:
        raise CheckpointImportError(
            f"{src}: records {recorded} bands, the import is for {bands}; pass --bands {recorded} (and "
            f"benchmark it on {recorded}-band data) or use a checkpoint of {bands} bands"
        )
    what = f"the {branch} backbone" if layout != "plain" else "the backbone"
    state = fill(target, backbone_of(tensors, layout, branch, src), src, what, model)
    return {
        "state_dict": state,
        "model": model,
        "model_args": model_args,
        "bands": bands,
        "sensor": sensor,
        "release": "",
        "code_version": checkpoints.code_version(),
        "method": {"plain": None}.get(layout, layout),
        "config": {},
        "history": [],
        "imported_from": {
            "file": str(src),
            "sha256": checkpoints.sha256(src),
            "layout": layout,
            "branch": branch,
            "prefix": BRANCHES[layout][branch],
        },
    }


def import_checkpoint(src: Path, out: Path, model: str, **kw: Any) -> ImportResult:
    """Convert ``src`` (see :func:`convert`) and write ``out`` atomically; on any error nothing is
    written and an earlier ``out`` stays as it was."""
    from assets.atomic_files import replace_atomically

    state = convert(Path(src), model, **kw)
    assert all(k in state for k in ENCODER_KEYS)
    out = Path(out)
    replace_atomically(out, lambda tmp: torch.save(state, tmp))
    origin = state["imported_from"]
    return ImportResult(
        out, checkpoints.sha256(out), origin["layout"], origin["branch"], len(state["state_dict"])
    )


def _known_prefixes() -> list[str]:
    return [*BACKBONE_PREFIXES, *(p for b in BRANCHES.values() for p in b.values() if p)]


def _kind(obj: Any) -> str:
    if torch.is_tensor(obj):
        return f"a tensor of shape {tuple(obj.shape)}"
    if isinstance(obj, Mapping):
        return "an empty dict" if not obj else f"a dict of {type(next(iter(obj.values()))).__name__}"
    return f"a {type(obj).__name__}"


def run(args: argparse.Namespace) -> int:
    """Import, print what was written; a bad input prints one message and returns 2."""
    try:
        result = import_checkpoint(
            Path(args.src),
            Path(args.out),
            args.model,
            layout=args.layout,
            branch=args.branch,
            bands=args.bands,
            sensor=args.sensor,
            trust_pickle=args.trust_pickle,
        )
    except CheckpointImportError as exc:
        print(f"import-checkpoint: {exc}", file=sys.stderr)
        return 2
    print(
        f"{result.out}: {args.model} from {args.src} ({result.layout}, {result.branch}), "
        f"{result.tensors} tensors, sha256 {result.sha256}"
    )
    return 0
