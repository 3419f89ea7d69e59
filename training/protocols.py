"""The three SpectralEarth evaluation protocols (section 5.3): frozen encoder, adapter only, full.

Each protocol function sets ``requires_grad`` on the encoder and the task head and returns the
parameter groups to hand to the optimiser together with trainable-parameter counts. Table 2 of the
paper reports the encoder's trainable parameters, excluding the task head: 0 for the frozen encoder,
about 56K for the spectral adapter (three Conv3d + BatchNorm blocks, 7/7/5 kernels, 32/64/128
channels: 56,192 parameters), more than 20M for full fine-tuning. ``trainable_encoder`` is that number;
``trainable_head`` is reported separately.

Frozen weights are not enough for a frozen encoder: BatchNorm layers in train mode still update their
running statistics, so the pretrained network would drift. ``set_train_mode`` therefore puts frozen
parts in eval mode; call it instead of ``model.train()`` at the start of every training epoch (the
usual ``model.train()`` would switch them back). For the adapter protocol the rest of the encoder is
in eval mode (its BatchNorm statistics stay the pretrained ones) and the adapter trains, including its
BatchNorm statistics, which is what lets it adapt to another sensor's or dataset's distribution.

The encoder is expected to expose its spectral adapter as ``encoder.adapter`` (``training.models``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from torch import nn

__all__ = [
    "PROTOCOLS",
    "ProtocolSetup",
    "adapter",
    "apply_protocol",
    "count_parameters",
    "frozen",
    "full",
    "set_train_mode",
]

PROTOCOLS: tuple[str, ...] = ("frozen", "adapter", "full")


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


def _setup(
    protocol: str, encoder: nn.Module, head: nn.Module | None, train: Iterable[tuple[str, nn.Module]]
) -> ProtocolSetup:
    """Freeze every encoder parameter, unfreeze the modules in ``train`` and the head, group them."""
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
    )


def frozen(encoder: nn.Module, head: nn.Module | None = None) -> ProtocolSetup:
    """Frozen encoder (linear probing / lightweight head): only the head trains; encoder in eval mode."""
    setup = _setup("frozen", encoder, head, [])
    set_train_mode(setup, encoder, head)
    return setup


def adapter(encoder: nn.Module, head: nn.Module | None = None) -> ProtocolSetup:
    """Fine-tune the spectral adapter and the head; the rest of the encoder is frozen, in eval mode."""
    setup = _setup("adapter", encoder, head, [("adapter", _adapter_of(encoder))])
    set_train_mode(setup, encoder, head)
    return setup


def full(encoder: nn.Module, head: nn.Module | None = None) -> ProtocolSetup:
    """Full fine-tuning: every parameter trains. The adapter gets its own group so that a training
    loop can give it (or the rest of the encoder) a different learning rate."""
    adapter_module = getattr(encoder, "adapter", None)
    if isinstance(adapter_module, nn.Module):
        setup = _setup("full", encoder, head, [("adapter", adapter_module), ("encoder", encoder)])
    else:
        setup = _setup("full", encoder, head, [("encoder", encoder)])
    set_train_mode(setup, encoder, head)
    return setup


_BY_NAME = {"frozen": frozen, "adapter": adapter, "full": full}


def apply_protocol(protocol: str, encoder: nn.Module, head: nn.Module | None = None) -> ProtocolSetup:
    """Dispatch on the protocol's name (one of ``PROTOCOLS``)."""
    try:
        fn = _BY_NAME[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}") from None
    return fn(encoder, head)


def set_train_mode(
    setup: ProtocolSetup | str, encoder: nn.Module, head: nn.Module | None = None, training: bool = True
) -> None:
    """Put the modules in train (``training=True``) or eval mode as the protocol requires.

    With ``training=False`` everything goes to eval mode (validation). Otherwise the head trains and
    the encoder trains fully (``full``), only in its adapter (``adapter``) or not at all (``frozen``).
    """
    protocol = setup.protocol if isinstance(setup, ProtocolSetup) else setup
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    if head is not None:
        head.train(training)
    encoder.train(training and protocol == "full")
    if training and protocol == "adapter":
        _adapter_of(encoder).train(True)
