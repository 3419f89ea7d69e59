"""MoCo-v2 and DINO on a stand-in encoder: the losses fall on a fixed tiny batch, the momentum
encoders follow by EMA only in ``step_end``, the queue and the centre behave; under DDP the key
batch is shuffled across ranks and restored. The published hyperparameters (../shared/RECIPE.md) are
the defaults: projection layers, bank, temperatures, prototypes, the first epoch's frozen prototypes
and the teacher's momentum schedule."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.training.standin_encoder import TinyEncoder
from training.methods.dino import DINO, DINOHead, teacher_momentum
from training.methods.moco import MoCoV2
from training.methods.pooling import embedding
from training.models.registry import build_encoder
from training.recipes import after_step, before_step, recipe


def _views(seed: int = 0, batch: int = 4, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, 6, size, size, generator=gen)
    return a, a + 0.1 * torch.randn(batch, 6, size, size, generator=gen)


def _moco(**kw) -> MoCoV2:
    torch.manual_seed(0)
    return MoCoV2(TinyEncoder(), dim=16, hidden=32, queue_size=32, **kw)


def _loss_before_and_after_steps(model, loss_fn, lr: float, steps: int = 5) -> tuple[float, float]:
    """The loss on a fixed batch, then again after ``steps`` optimiser steps (each followed by the
    method's ``step_end``)."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    with torch.no_grad():
        first = loss_fn().item()
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.step_end()
    with torch.no_grad():
        return first, loss_fn().item()


def test_moco_loss_decreases_on_a_fixed_batch():
    model = _moco()
    v1, v2 = _views()
    first, last = _loss_before_and_after_steps(model, lambda: model(v1, v2, enqueue=False), lr=1e-3)
    assert last < first


def test_moco_key_encoder_has_no_grad_and_moves_only_in_step_end():
    model = _moco(momentum=0.5)
    assert not any(p.requires_grad for p in model.key_encoder.parameters())
    assert not any(p.requires_grad for p in model.key_head.parameters())
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    key_before = [p.clone() for p in model.key_encoder.parameters()]
    model(*_views())
    assert all(torch.equal(a, b) for a, b in zip(key_before, model.key_encoder.parameters(), strict=True))
    model.step_end()
    for k0, k, q in zip(key_before, model.key_encoder.parameters(), model.encoder.parameters(), strict=True):
        torch.testing.assert_close(k, 0.5 * k0 + 0.5 * q)


def test_moco_queue_fills_and_wraps():
    model = _moco()
    v1, v2 = _views(batch=12)
    model(v1, v2)
    assert int(model.queue_ptr) == 12
    with torch.no_grad():
        keys = model._embed(model.key_encoder, model.key_head, v2)
    torch.testing.assert_close(model.queue[:12], keys)
    model(v1, v2)
    model(v1, v2)  # 36 keys into a queue of 32: wraps to 4
    assert int(model.queue_ptr) == 4
    torch.testing.assert_close(model.queue.norm(dim=1), torch.ones(32))
    before = model.queue.clone()
    model(v1, v2, enqueue=False)
    assert torch.equal(model.queue, before)


def test_moco_backward_after_enqueue():
    """The keys enter the queue inside forward, before backward: the loss must not depend on the
    queue tensor that is overwritten in place."""
    for symmetric in (False, True):
        model = _moco(symmetric=symmetric)
        loss = model(*_views())
        loss.backward()
        assert model.encoder.adapter[0].weight.grad is not None


def test_moco_symmetric_enqueues_both_views():
    model = _moco(symmetric=True)
    loss = model(*_views())
    assert loss.ndim == 0 and int(model.queue_ptr) == 8


def _dino(**kw) -> DINO:
    torch.manual_seed(0)
    return DINO(TinyEncoder(), out_dim=32, hidden=32, bottleneck=16, **kw)


def _crops() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g1, g2 = _views(size=8)
    l1, l2 = _views(seed=1, size=4)
    return [g1, g2], [l1, l2]


def test_dino_loss_decreases_on_a_fixed_batch():
    model = _dino()
    globals_, locals_ = _crops()
    first, last = _loss_before_and_after_steps(
        model, lambda: model(globals_, locals_, update_center=False), lr=1e-4
    )
    assert last < first


def test_dino_teacher_follows_by_ema_in_step_end_and_centre_moves():
    model = _dino(momentum=0.9, center_momentum=0.5)
    assert not any(p.requires_grad for p in model.teacher_encoder.parameters())
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(0.5)
    teacher_before = [p.clone() for p in model.teacher_head.parameters()]
    globals_, locals_ = _crops()
    with torch.no_grad():
        # The teacher sees both global views in one pass (one BatchNorm batch), as in the method.
        teacher_out = model.teacher_head(model.teacher_encoder(torch.cat(globals_)))
    model(globals_, locals_)
    torch.testing.assert_close(model.center, 0.5 * teacher_out.mean(0, keepdim=True))
    assert all(
        torch.equal(a, b) for a, b in zip(teacher_before, model.teacher_head.parameters(), strict=True)
    )
    model.step_end()
    for t0, t, s in zip(
        teacher_before, model.teacher_head.parameters(), model.head.parameters(), strict=True
    ):
        torch.testing.assert_close(t, 0.9 * t0 + 0.1 * s)


def test_dino_pairs_skip_same_view_and_need_two_views():
    model = _dino()
    globals_, _ = _crops()
    loss = model(globals_)  # two global views only: pairs (0, 1) and (1, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    with pytest.raises(ValueError):
        model(globals_[:1])


def test_dino_head_last_layer_rows_have_unit_norm():
    head = DINOHead(8, out_dim=10, hidden=16, bottleneck=4)
    torch.testing.assert_close(head.last_layer.weight().norm(dim=1), torch.ones(10))
    assert head(torch.randn(3, 8)).shape == (3, 10)
    model = _dino()
    model(*_crops()).backward()
    model.cancel_last_layer_gradients()
    assert all(p.grad is None for p in model.head.last_layer.parameters())


def _shuffle_on_rank(rank: int, world: int, init: str, out: str) -> None:
    import torch.distributed as dist

    from training.methods.moco import across_ranks_shuffled

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    torch.manual_seed(3)
    x = torch.arange(4.0).unsqueeze(1) + 10 * rank  # rank r holds 10r .. 10r+3
    seen = []

    def per_sample(batch: torch.Tensor) -> torch.Tensor:
        seen.append(batch.clone())
        return batch * 2

    keys = across_ranks_shuffled(per_sample, x)
    torch.save({"x": x, "keys": keys, "seen": seen[0]}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_moco_shuffles_the_key_batch_across_ranks_and_restores_the_order(tmp_path):
    """MoCo's shuffling BatchNorm on two Gloo processes: each rank's key batch is a mix of both
    ranks' images, and every key comes back to the rank and row of its own image."""
    import torch.multiprocessing as mp

    init = f"file://{tmp_path}/rendezvous"
    mp.spawn(_shuffle_on_rank, args=(2, init, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for r in ranks:
        assert torch.equal(r["keys"], r["x"] * 2)
    seen = torch.cat([r["seen"] for r in ranks]).flatten().tolist()
    assert sorted(seen) == [0, 1, 2, 3, 10, 11, 12, 13]
    assert any(v >= 10 for v in ranks[0]["seen"].flatten().tolist()), "rank 0 saw only its own images"


def test_moco_defaults_are_the_published_recipe():
    model = MoCoV2(TinyEncoder())
    assert (model.temperature, model.momentum, model.symmetric) == (0.1, 0.999, False)
    assert tuple(model.queue.shape) == (32768, 128)
    layers = list(model.head.net)
    assert [type(m) for m in layers] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d]
    assert all(m.bias is None for m in layers if isinstance(m, nn.Linear))
    assert (layers[0].in_features, layers[0].out_features, layers[3].out_features) == (8, 2048, 128)


def test_moco_and_dino_heads_read_the_class_token_of_a_published_vit():
    """The heads sit on ``encoder(x)``: for a Spec. ViT the class token after the final norm, not
    the mean of the patch tokens."""
    torch.manual_seed(0)
    vit = build_encoder("spec_vit", 6, embed_dim=32, depth=1, num_heads=2, img_size=16)
    moco = MoCoV2(vit, dim=16, hidden=32, queue_size=8).eval()  # eval: BatchNorm as a fixed map
    x = torch.randn(2, 6, 16, 16)
    cls = vit(x)
    assert not torch.allclose(cls, vit.forward_features(x).mean(dim=(-2, -1)))
    torch.testing.assert_close(embedding(vit, x), cls)
    torch.testing.assert_close(moco._embed(moco.encoder, moco.head, x), F.normalize(moco.head(cls), dim=1))


def test_dino_defaults_are_the_published_recipe():
    model = DINO(TinyEncoder())
    assert (model.teacher_temp, model.student_temp, model.center_momentum) == (0.04, 0.1, 0.9)
    assert (model.momentum, model.freeze_last_layer) == (0.996, 1)
    assert tuple(model.center.shape) == (1, 128)
    mlp = list(model.head.mlp)
    assert [type(m) for m in mlp] == [nn.Linear, nn.GELU, nn.Linear, nn.GELU, nn.Linear]
    assert [m.out_features for m in mlp if isinstance(m, nn.Linear)] == [2048, 2048, 256]
    last = model.head.last_layer
    assert tuple(last.weight_v.shape) == (128, 256) and last.weight_g is None  # weight-normed, norm 1
    out = model.head(torch.randn(3, 8))
    assert out.shape == (3, 128)


def test_dino_prototypes_are_frozen_in_the_first_epoch_only():
    model = _dino()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    before = model.head.last_layer.weight_v.detach().clone()
    mlp_before = model.head.mlp[0].weight.detach().clone()
    dino = recipe("dino")
    for epoch in (0, 1):
        opt.zero_grad()
        model(*_crops()).backward()
        before_step(model, dino, epoch)
        opt.step()
        if epoch == 0:
            assert torch.equal(model.head.last_layer.weight_v, before)  # weight decay skipped too
            assert not torch.equal(model.head.mlp[0].weight, mlp_before)
    assert not torch.equal(model.head.last_layer.weight_v, before)


def test_the_teacher_momentum_rises_from_0996_to_1_on_a_cosine():
    assert teacher_momentum(0.996, 0, 1000) == pytest.approx(0.996)
    assert teacher_momentum(0.996, 500, 1000) == pytest.approx(0.998)
    assert teacher_momentum(0.996, 1000, 1000) == pytest.approx(1.0)
    steps = [teacher_momentum(0.996, s, 100) for s in range(101)]
    assert steps == sorted(steps)


def test_the_training_loop_steps_the_dino_teacher_on_the_schedule_and_moco_at_fixed_momentum():
    model = _dino()
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(0.5)
    teacher = [p.clone() for p in model.teacher_head.parameters()]
    after_step(model, recipe("dino"), step=10, total_steps=10)  # momentum 1 at the end: unchanged
    assert all(torch.equal(a, b) for a, b in zip(teacher, model.teacher_head.parameters(), strict=True))
    after_step(model, recipe("dino"), step=0, total_steps=10)  # 0.996 at the start
    for t0, t, s in zip(teacher, model.teacher_head.parameters(), model.head.parameters(), strict=True):
        torch.testing.assert_close(t, 0.996 * t0 + 0.004 * s)
    moco = _moco(momentum=0.5)
    with torch.no_grad():
        for p in moco.encoder.parameters():
            p.add_(1.0)
    keys = [p.clone() for p in moco.key_encoder.parameters()]
    after_step(moco, recipe("moco"), step=10, total_steps=10)
    for k0, k, q in zip(keys, moco.key_encoder.parameters(), moco.encoder.parameters(), strict=True):
        torch.testing.assert_close(k, 0.5 * k0 + 0.5 * q)
