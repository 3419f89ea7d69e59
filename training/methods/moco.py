"""MoCo-v2 (Chen et al. 2020, "Improved baselines with momentum contrastive learning") in plain torch.

SpectralEarth pretrains Spec. RN50 and Spec. ViT-S with MoCo-v2, using two acquisitions of one
location as the positive pair when the location has them (section 5.1, Table 5). The method only sees
two batches of views: the data loader decides whether they are two acquisitions or two augmentations
of one image. Defaults are the published settings (``../shared/RECIPE.md``): temperature 0.1, a memory
bank of 32,768 negatives, key-encoder momentum 0.999, projection Linear (no bias) - BN - ReLU -
Linear (no bias) - BN, 2048 hidden, 128 out, on the backbone's pooled embedding (the class token of a
Spec. ViT, see ``training.methods.pooling``). The loss is asymmetric (queries of view 1, keys of view
2), as MoCo-v2's; ``symmetric=True`` adds the swapped term.

Contract with the training loop (the same for ``DINO``)::

    loss = method(view1, view2)   # computes the loss, then enqueues this batch's keys
    loss.backward(); optimizer.step(); optimizer.zero_grad()
    method.step_end()             # momentum update of the key encoder, once per optimizer step

The momentum update lives in ``step_end`` rather than in ``forward`` so that it happens exactly once
per optimizer step, after the query weights changed (with gradient accumulation several forwards share
one step), and so that a forward for validation does not move the key encoder. The original MoCo code
updates at the start of the next forward, which is the same sequence of weights.

Under DDP, as in MoCo: the keys are computed with shuffling BatchNorm (``across_ranks_shuffled``:
each rank's key encoder sees a random share of all ranks' images, so a query and its positive key
never share batch statistics, a shortcut the contrastive task could otherwise take), and the keys
of all ranks are gathered before they enter the queue. Keys are computed under ``torch.no_grad``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from training.methods.pooling import embedding

__all__ = ["MoCoV2", "ProjectionMLP", "across_ranks_shuffled"]


class ProjectionMLP(nn.Module):
    """The published projection head: Linear (no bias) -> BN -> ReLU -> Linear (no bias) -> BN.

    The biases are left out because each Linear is followed by a BatchNorm, whose shift replaces them.
    """

    def __init__(self, in_dim: int, hidden: int = 2048, out_dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out_dim, bias=False),
            nn.BatchNorm1d(out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _gather(t: Tensor) -> Tensor:
    """Concatenate ``t`` from every DDP rank (no gradient); ``t`` itself when not distributed."""
    if _world() == 1:
        return t
    parts = [torch.empty_like(t) for _ in range(_world())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


@torch.no_grad()
def across_ranks_shuffled(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``fn`` applied to a random share of every rank's ``x`` (equal batch sizes on all ranks),
    its results put back in the order of this rank's ``x``: MoCo's shuffling BatchNorm. One
    process: ``fn(x)``. Rank 0 draws the permutation from the global generator and broadcasts it."""
    world = _world()
    if world == 1:
        return fn(x)
    everything = _gather(x)
    order = torch.randperm(everything.shape[0]).to(x.device)
    dist.broadcast(order, 0)
    rank = dist.get_rank()
    shares = order.view(world, -1)
    results = _gather(fn(everything[shares[rank]]))
    restored = torch.empty_like(results)
    restored[order] = results
    return restored.view(world, x.shape[0], *results.shape[1:])[rank]


class MoCoV2(nn.Module):
    """Query encoder + head trained by InfoNCE against a momentum key encoder and a queue of negatives.

    ``encoder`` must provide ``out_channels`` (C) and ``encoder(x)`` -> the pooled (B, C) embedding
    (a (B, C, h, w) map is average-pooled). ``symmetric=True`` adds the loss with the views swapped
    (a common variant; MoCo-v2 itself is asymmetric) and enqueues both key batches.
    """

    def __init__(
        self,
        encoder: nn.Module,
        dim: int = 128,
        hidden: int = 2048,
        queue_size: int = 32768,
        momentum: float = 0.999,
        temperature: float = 0.1,
        symmetric: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = ProjectionMLP(int(encoder.out_channels), hidden, dim)
        self.key_encoder = copy.deepcopy(encoder)
        self.key_head = copy.deepcopy(self.head)
        for p in (*self.key_encoder.parameters(), *self.key_head.parameters()):
            p.requires_grad_(False)
        self.momentum = momentum
        self.temperature = temperature
        self.symmetric = symmetric
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @staticmethod
    def _embed(encoder: nn.Module, head: nn.Module, x: Tensor) -> Tensor:
        return F.normalize(head(embedding(encoder, x)), dim=1)

    def _keys(self, x: Tensor) -> Tensor:
        return across_ranks_shuffled(lambda b: self._embed(self.key_encoder, self.key_head, b), x)

    def info_nce(self, q: Tensor, k: Tensor) -> Tensor:
        """InfoNCE with the positive ``k`` (same row) and the queue's negatives; logits / temperature."""
        l_pos = (q * k).sum(1, keepdim=True)
        l_neg = q @ self.queue.clone().t()  # a copy: the queue is updated in place before backward
        logits = torch.cat([l_pos, l_neg], dim=1) / self.temperature
        labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, labels)

    def forward(self, view1: Tensor, view2: Tensor, enqueue: bool = True) -> Tensor:
        """Loss of queries from ``view1`` against keys from ``view2`` (and the reverse if symmetric).

        The keys enter the queue after the loss is computed (``enqueue=False`` leaves it unchanged,
        e.g. to evaluate).
        """
        q1 = self._embed(self.encoder, self.head, view1)
        k2 = self._keys(view2)
        loss = self.info_nce(q1, k2)
        keys = [k2]
        if self.symmetric:
            q2 = self._embed(self.encoder, self.head, view2)
            k1 = self._keys(view1)
            loss = 0.5 * (loss + self.info_nce(q2, k1))
            keys.append(k1)
        if enqueue:
            for k in keys:
                self._enqueue(k)
        return loss

    @torch.no_grad()
    def _enqueue(self, keys: Tensor) -> None:
        """Overwrite the oldest entries with ``keys`` (all ranks' keys under DDP), wrapping around."""
        keys = _gather(keys.detach()).to(self.queue.dtype)
        n, size = keys.shape[0], self.queue.shape[0]
        if n >= size:
            self.queue.copy_(keys[-size:])
            self.queue_ptr.zero_()
            return
        idx = (self.queue_ptr + torch.arange(n, device=self.queue.device)) % size
        self.queue[idx] = keys
        self.queue_ptr.copy_((self.queue_ptr + n) % size)

    @torch.no_grad()
    def momentum_update(self, momentum: float | None = None) -> None:
        """key = m * key + (1 - m) * query, for encoder and head parameters; buffers (BatchNorm
        statistics) of the key encoder are its own, as in MoCo."""
        m = self.momentum if momentum is None else momentum
        pairs = zip(
            (*self.key_encoder.parameters(), *self.key_head.parameters()),
            (*self.encoder.parameters(), *self.head.parameters()),
            strict=True,
        )
        for k, q in pairs:
            k.mul_(m).add_(q.detach(), alpha=1 - m)

    def step_end(self, momentum: float | None = None) -> None:
        """Call once after every ``optimizer.step()``: the momentum update of the key encoder."""
        self.momentum_update(momentum)
