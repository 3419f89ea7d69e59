"""DINO (Caron et al. 2021, "Emerging properties in self-supervised vision transformers") in plain torch.

SpectralEarth pretrains Spec. RN50 and Spec. ViT-S with DINO, the temporal views of a location
serving as the two global crops when the location has more than one acquisition (section 5.1).
Defaults are the published settings (``../shared/RECIPE.md``): head MLP of 3 GELU layers, 2048 hidden,
256 bottleneck, L2 normalisation, weight-normalised last layer of **128** prototypes with its norm
fixed to 1 and frozen for the first epoch (``freeze_last_layer``), student temperature 0.1, teacher
temperature 0.04, centre momentum 0.9, teacher momentum from 0.996 towards 1 on a cosine schedule
over all steps of the run (:func:`teacher_momentum`). The head reads the backbone's pooled embedding
(the class token of a Spec. ViT, see ``training.methods.pooling``).

Contract with the training loop (the same as ``MoCoV2``)::

    loss = method(global_views, local_views)   # loss; then the centre is updated (no grad)
    loss.backward()
    method.before_optimizer_step(epoch)        # drops the prototypes' gradients in the first epoch
    optimizer.step(); optimizer.zero_grad()
    method.step_end(teacher_momentum(method.momentum, step, total_steps))   # teacher EMA

Views of different sizes go through the encoder one size at a time (local crops, when used).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.methods.pooling import embedding

__all__ = ["DINO", "DINOHead", "WeightNormLinear", "teacher_momentum"]


def teacher_momentum(base: float, step: int, total_steps: int) -> float:
    """DINO's cosine schedule: ``base`` at step 0, rising to 1 at ``total_steps``:
    ``1 - (1 - base) * (1 + cos(pi * step / total_steps)) / 2``."""
    progress = min(step / max(total_steps, 1), 1.0)
    return 1.0 - (1.0 - base) * (1.0 + math.cos(math.pi * progress)) / 2.0


class WeightNormLinear(nn.Module):
    """Linear layer without bias whose rows are ``g * v / ||v||``.

    DINO's last layer. With ``fixed_norm=True`` (DINO's ``norm_last_layer``) g is 1 and not learned,
    which the DINO authors found stabilises training. Written out rather than through
    ``torch.nn.utils`` parametrisations so that ``copy.deepcopy`` and state dicts stay plain tensors.
    """

    def __init__(self, in_dim: int, out_dim: int, fixed_norm: bool = True) -> None:
        super().__init__()
        self.weight_v = nn.Parameter(torch.empty(out_dim, in_dim))
        nn.init.trunc_normal_(self.weight_v, std=0.02)
        self.weight_g = None if fixed_norm else nn.Parameter(torch.ones(out_dim, 1))

    def weight(self) -> Tensor:
        w = F.normalize(self.weight_v, dim=1)
        return w if self.weight_g is None else w * self.weight_g

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight())


class DINOHead(nn.Module):
    """MLP (3 layers, GELU) -> bottleneck -> L2 normalisation -> weight-normalised prototypes."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 128,
        hidden: int = 2048,
        bottleneck: int = 256,
        n_layers: int = 3,
        fixed_norm: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        dims = [in_dim] + [hidden] * (n_layers - 1) + [bottleneck]
        for i in range(n_layers):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < n_layers - 1:
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = WeightNormLinear(bottleneck, out_dim, fixed_norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))


def _all_reduce_mean(t: Tensor) -> Tensor:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
        t = t / dist.get_world_size()
    return t


class DINO(nn.Module):
    """Student/teacher self-distillation with centring and sharpening of the teacher's output.

    The teacher (a deep copy of encoder + head, no gradients) sees the global views only; the student
    sees global and local views. Loss: mean over pairs (teacher view i, student view j != i) of the
    cross-entropy between softmax((t_i - centre) / teacher_temp) and softmax(s_j / student_temp).
    """

    def __init__(
        self,
        encoder: nn.Module,
        out_dim: int = 128,
        teacher_temp: float = 0.04,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
        momentum: float = 0.996,
        hidden: int = 2048,
        bottleneck: int = 256,
        fixed_norm: bool = True,
        freeze_last_layer: int = 1,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = DINOHead(int(encoder.out_channels), out_dim, hidden, bottleneck, fixed_norm=fixed_norm)
        self.teacher_encoder = copy.deepcopy(encoder)
        self.teacher_head = copy.deepcopy(self.head)
        for p in (*self.teacher_encoder.parameters(), *self.teacher_head.parameters()):
            p.requires_grad_(False)
        self.teacher_temp = teacher_temp
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.momentum = momentum
        """The teacher momentum at step 0; the training loop raises it with :func:`teacher_momentum`."""
        self.freeze_last_layer = freeze_last_layer
        """Epochs during which the prototypes (the student's last layer) are not updated."""
        self.register_buffer("center", torch.zeros(1, out_dim))

    @staticmethod
    def _multi_view(encoder: nn.Module, head: nn.Module, views: list[Tensor]) -> list[Tensor]:
        """Head outputs per view; views of one spatial size are concatenated into one encoder pass."""
        outputs: list[Tensor | None] = [None] * len(views)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, v in enumerate(views):
            by_size.setdefault(tuple(v.shape[-2:]), []).append(i)
        for indices in by_size.values():
            batch = torch.cat([views[i] for i in indices])
            out = head(embedding(encoder, batch))
            for i, chunk in zip(indices, out.chunk(len(indices)), strict=True):
                outputs[i] = chunk
        return outputs  # type: ignore[return-value]

    def forward(
        self, global_views: list[Tensor], local_views: list[Tensor] | None = None, update_center: bool = True
    ) -> Tensor:
        """DINO loss for lists of (B, bands, H, W) views; the centre is updated afterwards unless
        ``update_center=False`` (e.g. to evaluate)."""
        local_views = list(local_views or [])
        if len(global_views) < 2 and not local_views:
            raise ValueError("DINO needs at least two views")
        student = self._multi_view(self.encoder, self.head, [*global_views, *local_views])
        with torch.no_grad():
            teacher = self._multi_view(self.teacher_encoder, self.teacher_head, list(global_views))
            targets = [F.softmax((t - self.center) / self.teacher_temp, dim=-1) for t in teacher]
        log_probs = [F.log_softmax(s / self.student_temp, dim=-1) for s in student]
        total, pairs = 0.0, 0
        for i, target in enumerate(targets):
            for j, log_p in enumerate(log_probs):
                if i == j:  # the same global view for teacher and student is not a pair
                    continue
                total = total + (-(target * log_p).sum(-1)).mean()
                pairs += 1
        loss = total / pairs
        if update_center:
            self._update_center(torch.cat(teacher))
        return loss

    @torch.no_grad()
    def _update_center(self, teacher_out: Tensor) -> None:
        """EMA of the teacher's mean output (over all ranks): subtracting it prevents one prototype
        from dominating (collapse), while the low teacher temperature sharpens."""
        batch_center = _all_reduce_mean(teacher_out.mean(0, keepdim=True))
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)

    @torch.no_grad()
    def teacher_update(self, momentum: float | None = None) -> None:
        """teacher = m * teacher + (1 - m) * student, for encoder and head parameters."""
        m = self.momentum if momentum is None else momentum
        pairs = zip(
            (*self.teacher_encoder.parameters(), *self.teacher_head.parameters()),
            (*self.encoder.parameters(), *self.head.parameters()),
            strict=True,
        )
        for t, s in pairs:
            t.mul_(m).add_(s.detach(), alpha=1 - m)

    def step_end(self, momentum: float | None = None) -> None:
        """Call once after every ``optimizer.step()``: the teacher EMA (``momentum`` from a schedule)."""
        self.teacher_update(momentum)

    def cancel_last_layer_gradients(self) -> None:
        """Drop the gradients of the student's prototype layer (DINO freezes it in the first epoch)."""
        for p in self.head.last_layer.parameters():
            p.grad = None

    def before_optimizer_step(self, epoch: int) -> None:
        """Call after ``backward`` and before ``optimizer.step()``: during the first
        ``freeze_last_layer`` epochs the prototypes keep their weights (AdamW skips a parameter
        without a gradient, weight decay included), which DINO found avoids an early collapse."""
        if epoch < self.freeze_last_layer:
            self.cancel_last_layer_gradients()
