"""The three SpectralEarth evaluation protocols (section 5.3): frozen encoder, adapter only, full.

Each protocol function sets ``requires_grad`` on the encoder and the task head and returns the
parameter groups to hand to the optimiser together with trainable-parameter counts. Table 2 of the
paper reports the encoder's trainable parameters, excluding the task head: 0 for the frozen encoder,
about 56K for the spectral adapter (three Conv3d + BatchNorm blocks, 7/7/5 kernels, 32/64/128
channels: 56,192 parameters), more than 20M for full fine-tuning. ``trainable_encoder`` is that number;
``trainable_head`` is reported separately.

Frozen weights do not freeze BatchNorm: in train mode its running statistics keep moving. The
published downstream code leaves the frozen parts in train mode (Lightning's ``model.train()``), so
their BatchNorm statistics re-adapt to the downstream data while their weights stay fixed: that is
``frozen_bn="train"``, the default. ``frozen_bn="eval"`` puts the frozen parts in eval mode (their
statistics stay the pretrained ones; a stricter linear probe). ``set_train_mode`` applies the choice;
call it instead of ``model.train()`` at the start of every training epoch (``model.train()`` would
undo ``eval``). The trainable parts always train, BatchNorm statistics included.

Progressive unfreezing (the paper's Fig. 9) trains the first ``n`` *layers* of the encoder, counted
from the input, with the head: protocol ``first_<n>`` (``unfreeze_first``). The layers
(``encoder_layers``) are, for Spec. ResNet-50: the spectral adapter, ``layer1`` .. ``layer4`` (5);
for Spec. ViT: the spectral adapter, the patch embedding (with the class token and the position
table), then each transformer block, the final norm counted with the last block (2 + depth). An
``n`` at least the number of layers is full fine-tuning.

The encoder is expected to expose its spectral adapter as ``encoder.adapter`` (``training.models``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from torch import nn

__all__ = [
    "FROZEN_BN",
    "PROTOCOLS",
    "ProtocolSetup",
    "adapter",
    "apply_protocol",
    "check_protocol",
    "count_parameters",
    "encoder_layers",
    "frozen",
    "full",
    "set_train_mode",
    "unfreeze_first",
]

PROTOCOLS: tuple[str, ...] = ("frozen", "adapter", "full")
"""The paper's three protocols; ``first_<n>`` (progressive unfreezing) is accepted besides."""
FROZEN_BN: tuple[str, ...] = ("train", "eval")
FIRST = "first_"


def count_parameters(params: Iterable[nn.Parameter], trainable_only: bool = False) -> int:
    """Number of scalar parameters (each tensor counted once)."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in params}
    return sum(p.numel() for p in seen.values() if p.requires_grad or not trainable_only)


@dataclass
class ProtocolSetup:
    """What a protocol left trainable.

    ``param_groups`` is a list of ``{"name": ..., "params": [...]}`` dicts ready for
    ``torch.optim.AdamW(setup.param_groups, lr=...)`` (set a per-group ``"lr"`` to differ); groups
    with no parameters are left out. Counts are scalar parameters.
    """

    protocol: str
    param_groups: list[dict] = field(default_factory=list)
    trainable_encoder: int = 0
    trainable_head: int = 0
    total_encoder: int = 0
    frozen_bn: str = "train"
    """BatchNorm of the frozen parts during training: ``train`` (published) or ``eval``."""
    trainable_modules: list[nn.Module] = field(default_factory=list)
    """The encoder modules that train (put in train mode even when ``frozen_bn`` is ``eval``)."""

    @property
    def trainable(self) -> int:
        return self.trainable_encoder + self.trainable_head


def _adapter_of(encoder: nn.Module) -> nn.Module:
    module = getattr(encoder, "adapter", None)
    if not isinstance(module, nn.Module):
        raise AttributeError(
            f"{type(encoder).__name__} has no `.adapter` module: the adapter protocol needs one"
        )
    return module


class _Params(nn.Module):
    """Loose parameters (a ViT's class token and position table) as a module, so that a layer is
    always a list of modules; registering them here does not re-parent them."""

    def __init__(self, params: list[nn.Parameter]) -> None:
        super().__init__()
        self._loose = params

    def parameters(self, recurse: bool = True):  # type: ignore[override]
        return iter(self._loose)


def encoder_layers(encoder: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """The encoder's layers from the input, for progressive unfreezing (module docstring).

    Understands the published layout (``resnet.layer1..4``, ``vit_core.{patch_embed,blocks,norm}``)
    and the flat one (``layer1..4``; ``patch_embed``, ``blocks``, ``norm`` on the encoder itself)."""
    layers: list[tuple[str, list[nn.Module]]] = [("adapter", [_adapter_of(encoder)])]
    resnet = getattr(encoder, "resnet", encoder)
    if all(isinstance(getattr(resnet, f"layer{i}", None), nn.Module) for i in range(1, 5)):
        return layers + [(f"layer{i}", [getattr(resnet, f"layer{i}")]) for i in range(1, 5)]
    core = getattr(encoder, "vit_core", encoder)
    blocks = getattr(core, "blocks", None)
    if isinstance(getattr(core, "patch_embed", None), nn.Module) and isinstance(blocks, nn.ModuleList):
        loose = [
            p
            for name in ("cls_token", "pos_embed")
            if isinstance(p := getattr(core, name, None), nn.Parameter)
        ]
        layers.append(("patch_embed", [core.patch_embed, _Params(loose)]))
        for i, block in enumerate(blocks):
            last = i == len(blocks) - 1 and isinstance(getattr(core, "norm", None), nn.Module)
            layers.append((f"blocks.{i}", [block, core.norm] if last else [block]))
        return layers
    raise AttributeError(
        f"{type(encoder).__name__} has neither ResNet stages (layer1..4) nor ViT blocks: "
        "progressive unfreezing does not know its layers"
    )


def _setup(
    protocol: str,
    encoder: nn.Module,
    head: nn.Module | None,
    train: Iterable[tuple[str, nn.Module]],
    frozen_bn: str = "train",
) -> ProtocolSetup:
    """Freeze every encoder parameter, unfreeze the modules in ``train`` and the head, group them."""
    if frozen_bn not in FROZEN_BN:
        raise ValueError(f"frozen_bn must be one of {FROZEN_BN}, not {frozen_bn!r}")
    train = list(train)
    encoder_params = list(encoder.parameters())
    encoder_ids = {id(p) for p in encoder_params}
    for p in encoder_params:
        p.requires_grad_(False)
    groups: list[dict] = []
    trainable_ids: set[int] = set()
    for name, module in train:
        params = [p for p in module.parameters() if id(p) not in trainable_ids]
        for p in params:
            p.requires_grad_(True)
            trainable_ids.add(id(p))
        if params:
            groups.append({"name": name, "params": params})
    # A head that wraps the encoder (e.g. a segmentation model) must not re-enable encoder weights.
    head_params = [p for p in head.parameters() if id(p) not in encoder_ids] if head is not None else []
    for p in head_params:
        p.requires_grad_(True)
    if head_params:
        groups.append({"name": "head", "params": head_params})
    return ProtocolSetup(
        protocol=protocol,
        param_groups=groups,
        trainable_encoder=count_parameters(encoder_params, trainable_only=True),
        trainable_head=count_parameters(head_params),
        total_encoder=count_parameters(encoder_params),
        frozen_bn=frozen_bn,
        trainable_modules=[module for _, module in train],
    )


def frozen(encoder: nn.Module, head: nn.Module | None = None, frozen_bn: str = "train") -> ProtocolSetup:
    """Frozen encoder (linear probing / lightweight head): only the head trains."""
    setup = _setup("frozen", encoder, head, [], frozen_bn)
    set_train_mode(setup, encoder, head)
    return setup


def adapter(encoder: nn.Module, head: nn.Module | None = None, frozen_bn: str = "train") -> ProtocolSetup:
    """Fine-tune the spectral adapter and the head; the rest of the encoder is frozen."""
    setup = _setup("adapter", encoder, head, [("adapter", _adapter_of(encoder))], frozen_bn)
    set_train_mode(setup, encoder, head)
    return setup


def full(encoder: nn.Module, head: nn.Module | None = None, frozen_bn: str = "train") -> ProtocolSetup:
    """Full fine-tuning: every parameter trains. The adapter gets its own group so that a training
    loop can give it (or the rest of the encoder) a different learning rate."""
    adapter_module = getattr(encoder, "adapter", None)
    if isinstance(adapter_module, nn.Module):
        setup = _setup("full", encoder, head, [("adapter", adapter_module), ("encoder", encoder)], frozen_bn)
    else:
        setup = _setup("full", encoder, head, [("encoder", encoder)], frozen_bn)
    set_train_mode(setup, encoder, head)
    return setup


def unfreeze_first(
    encoder: nn.Module, head: nn.Module | None = None, n: int = 1, frozen_bn: str = "train"
) -> ProtocolSetup:
    """Progressive unfreezing: the first ``n`` layers of ``encoder_layers`` train with the head,
    one parameter group per layer (protocol ``first_<n>``)."""
    if n < 1:
        raise ValueError(f"unfreeze_first needs n >= 1 layers, not {n} (n = 0 is the frozen protocol)")
    chosen = encoder_layers(encoder)[:n]
    train = [
        (f"{name}.{i}" if len(mods) > 1 else name, m) for name, mods in chosen for i, m in enumerate(mods)
    ]
    setup = _setup(f"{FIRST}{n}", encoder, head, train, frozen_bn)
    set_train_mode(setup, encoder, head)
    return setup


_BY_NAME = {"frozen": frozen, "adapter": adapter, "full": full}


def check_protocol(protocol: str) -> str:
    """``protocol`` when it is one of ``PROTOCOLS`` or ``first_<n>`` (n >= 1); else ValueError."""
    if protocol in _BY_NAME:
        return protocol
    if (
        protocol.startswith(FIRST)
        and protocol.removeprefix(FIRST).isdigit()
        and int(protocol[len(FIRST) :]) >= 1
    ):
        return protocol
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS} or first_<n> (n >= 1)")


def apply_protocol(
    protocol: str, encoder: nn.Module, head: nn.Module | None = None, frozen_bn: str = "train"
) -> ProtocolSetup:
    """Dispatch on the protocol's name (one of ``PROTOCOLS``, or ``first_<n>``)."""
    if check_protocol(protocol) in _BY_NAME:
        return _BY_NAME[protocol](encoder, head, frozen_bn=frozen_bn)
    return unfreeze_first(encoder, head, int(protocol.removeprefix(FIRST)), frozen_bn=frozen_bn)


def set_train_mode(
    setup: ProtocolSetup | str,
    encoder: nn.Module,
    head: nn.Module | None = None,
    training: bool = True,
    frozen_bn: str | None = None,
) -> None:
    """Put the modules in train (``training=True``) or eval mode as the protocol requires.

    With ``training=False`` everything goes to eval mode (validation). Otherwise the head and the
    encoder's trainable parts train; the frozen parts train too with ``frozen_bn="train"`` (their
    BatchNorm statistics re-adapt, as published) and are in eval mode with ``"eval"``. ``frozen_bn``
    defaults to the setup's (``"train"`` when ``setup`` is a protocol name).
    """
    if isinstance(setup, str):
        check_protocol(setup)
        setup = ProtocolSetup(
            setup, frozen_bn=frozen_bn or "train", trainable_modules=_modules_of(setup, encoder)
        )
    mode = frozen_bn or setup.frozen_bn
    if mode not in FROZEN_BN:
        raise ValueError(f"frozen_bn must be one of {FROZEN_BN}, not {mode!r}")
    if head is not None:
        head.train(training)
    encoder.train(training and mode == "train")
    if training:
        for module in setup.trainable_modules:
            module.train(True)


def _modules_of(protocol: str, encoder: nn.Module) -> list[nn.Module]:
    """The encoder modules that ``protocol`` trains (for ``set_train_mode`` given only a name)."""
    if protocol == "full":
        return [encoder]
    if protocol == "adapter":
        return [_adapter_of(encoder)]
    if protocol.startswith(FIRST):
        return [m for _, mods in encoder_layers(encoder)[: int(protocol.removeprefix(FIRST))] for m in mods]
    return []
