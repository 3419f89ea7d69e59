"""What the encoder's metadata says of its loss: a table whose bars follow the loss, and a note
with the reason when the loss ends above where it started (MoCo's queue filling with real keys,
the momentum encoder's lag, the warm-up), checked against the mechanism itself."""

from __future__ import annotations

import torch

from training.config import PretrainConfig
from training.methods.moco import MoCoV2
from training.models.registry import build_encoder
from training.plots import RunShape, loss_note, loss_table_markdown
from training.pretrain import PretrainResult, _metadata


def _history(*losses: float) -> list[dict]:
    return [{"epoch": i, "loss": loss, "images_per_s": 4.0} for i, loss in enumerate(losses)]


def _tiny_moco(queue_size: int = 64) -> MoCoV2:
    torch.manual_seed(0)
    encoder = build_encoder("spec_vit", 202, embed_dim=32, depth=1, num_heads=2, mlp_dim=64)
    return MoCoV2(encoder, dim=16, hidden=32, queue_size=queue_size)


def test_the_table_s_bars_follow_the_loss():
    table = loss_table_markdown(_history(3.08, 3.91, 4.18))
    rows = table.splitlines()[2:]
    bars = [row.split("|")[3].strip() for row in rows]
    assert [len(b) for b in bars] == sorted(len(b) for b in bars) and len(bars[0]) == 1
    assert "4.1800" in rows[-1] and rows[0].startswith("| 0 | 3.0800 |")


def test_a_falling_loss_gets_no_note():
    shape = RunShape("mae", 59, 7, 8, 1)
    assert loss_note(_history(1.0, 0.8, 0.7), shape) is None
    assert loss_note(_history(1.0), shape) is None


def test_a_rising_moco_loss_is_explained_with_the_run_s_numbers():
    method = _tiny_moco(queue_size=256)
    shape = RunShape.of(method, "moco", locations=59, steps_per_epoch=7, batch_size=8, warmup=1)
    assert (shape.queue_size, shape.keys_per_step, shape.momentum) == (256, 8, 0.999)
    note = loss_note(_history(3.08, 3.91, 4.18), shape)
    assert "rose from 3.080 to 4.180 over 21 steps" in note
    assert "queue of 256 negatives starts as random vectors" in note
    assert "by the end 168 of its entries were real keys (32 steps fill it)" in note
    assert "4.3 keys of every location" in note
    assert "still 98% the initial network" in note and "warms up over the first 1 epoch" in note


def test_the_note_reaches_the_metadata(tmp_path):
    cfg = PretrainConfig(data_root=str(tmp_path), method="moco", out_dir=str(tmp_path))
    note = "The loss rose because ..."
    result = PretrainResult(
        tmp_path / "encoder.pt", "ab" * 32, "v1", "c1", _history(1.0, 2.0), loss_note=note
    )
    md = _metadata(result, cfg)
    assert md["loss_note"] == {"raw_value": note, "type": "text"}
    assert md["loss_curve"]["type"] == "md" and "█" in md["loss_curve"]["raw_value"]
    assert "loss_note" not in _metadata(PretrainResult(tmp_path, "", "v1", "c1", _history(2.0, 1.0)), cfg)


def test_real_keys_in_the_queue_make_the_same_model_s_task_harder():
    """The note's main claim: an untrained MoCo, the same queries and positives, scores a higher loss
    against a queue of real keys (what the queue holds once filled) than against random vectors (what
    it holds at step 0)."""
    method = _tiny_moco().train()
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(8, 202, 16, 16, generator=generator)
    views = [images + 0.1 * torch.randn(images.shape, generator=generator) for _ in range(2)]
    with torch.no_grad():
        random_queue = method(*views, enqueue=False)
        for _ in range(8):  # fill the queue of 64 with the keys of other images
            others = torch.randn(8, 202, 16, 16, generator=generator)
            method(others, others, enqueue=True)
        real_queue = method(*views, enqueue=False)
    # The published projection head ends in BatchNorm, which whitens the keys, so real keys are
    # closer to random vectors than without it: the gap is smaller (0.34 -> 0.42 here) but there.
    assert real_queue > random_queue + 0.05
