"""The published downstream recipe: settings per dataset, schedule, augmentation of image and mask
together, and the lowest-validation-loss epoch being the one tested."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import training.benchmark as benchmark
from tests.training.standin_encoder import TinyEncoder
from training.benchmark import Settings, run_protocol
from training.config import BenchmarkConfig
from training.distributed import Placement
from training.downstream import (
    PUBLISHED,
    BestEpoch,
    Precision,
    augment,
    cosine_schedule,
    per_process_batch,
    recipe_for,
)


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_published_settings_per_dataset_and_the_config_overrides():
    assert {name: (r.batch_size, r.weight_decay, r.crop_scale) for name, r in PUBLISHED.items()} == {
        "enmap_corine": (128, 1e-5, (0.6, 1.0)),
        "enmap_nlcd": (64, 1e-4, (0.2, 1.0)),
        "enmap_cdl": (32, 1e-4, (0.2, 1.0)),
        "desis_cdl": (32, 1e-4, (0.4, 1.0)),
    }
    assert recipe_for("another_map", "segmentation") == PUBLISHED["enmap_cdl"]
    with pytest.raises(ValueError, match="another_map"):
        recipe_for("another_map", "regression")
    published = Settings.of(BenchmarkConfig(), "enmap_nlcd", "segmentation")
    assert (published.batch_size, published.weight_decay, published.crop_scale) == (64, 1e-4, (0.2, 1.0))
    smoke = Settings.of(BenchmarkConfig(batch_size=4, weight_decay=0.5), "enmap_corine", "multilabel")
    assert (smoke.batch_size, smoke.weight_decay, smoke.crop_scale) == (4, 0.5, (0.6, 1.0))


def test_the_global_batch_splits_over_processes():
    assert per_process_batch(128, 4) == 32 and per_process_batch(32, 1) == 32
    with pytest.raises(ValueError, match="multiple of 3"):
        per_process_batch(64, 3)


def test_cosine_schedule_anneals_to_zero_over_the_epochs():
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1e-3)
    schedule = cosine_schedule(optimizer, 4)
    lrs = []
    for _ in range(4):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    expected = [1e-3 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert lrs == pytest.approx(expected)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_image_and_mask_get_the_same_box_and_flips():
    """Band 0 holds each pixel's row, band 1 its column (bilinear resampling of a linear ramp is
    exact), and the mask its pixel id (resampled nearest): after augmenting, every pixel's id must
    be the input pixel nearest to where its image values come from."""
    size = 32
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images = torch.stack([ys, xs]).float().expand(16, 2, size, size).contiguous()
    mask = (ys * size + xs).expand(16, size, size).contiguous()
    out, out_mask = augment(images, mask, (0.2, 1.0), _generator())
    assert out.shape == images.shape and out_mask.shape == mask.shape and out_mask.dtype == mask.dtype
    row, col = out_mask // size, out_mask % size
    assert (out[:, 0] - row).abs().max() <= 0.5 + 1e-4 and (out[:, 1] - col).abs().max() <= 0.5 + 1e-4
    assert not torch.equal(out_mask, mask), "something was cropped or flipped"
    # a mask augmented with another draw does not line up
    _, other = augment(images, mask, (0.2, 1.0), _generator(1))
    assert (out[:, 0] - other // size).abs().max() > 1


def test_crop_scale_bounds_the_cropped_area():
    """With scale (0.6, 1) the crop keeps at least about 60% of the pixels (ids that survive)."""
    size = 32
    mask = torch.arange(size * size).view(1, size, size).expand(32, size, size).contiguous()
    images = torch.zeros(32, 1, size, size)
    _, wide = augment(images, mask, PUBLISHED["enmap_corine"].crop_scale, _generator())
    _, narrow = augment(images, mask, (0.2, 0.25), _generator())
    kept_wide = min(len(torch.unique(m)) for m in wide) / size**2
    kept_narrow = max(len(torch.unique(m)) for m in narrow) / size**2
    assert kept_wide >= 0.55 and kept_narrow <= 0.3


def test_a_multilabel_target_is_untouched_and_normalising_first_is_the_same():
    torch.manual_seed(0)
    raw = torch.rand(4, 3, 16, 16) * 1000
    target = torch.tensor([[1.0, 0.0]]).expand(4, 2)
    mean, std = (
        torch.tensor([100.0, 200.0, 300.0]).view(3, 1, 1),
        torch.tensor([10.0, 20.0, 5.0]).view(3, 1, 1),
    )
    before, kept = augment((raw - mean) / std, target, (0.2, 1.0), _generator())
    after, _ = augment(raw, target, (0.2, 1.0), _generator())
    assert kept is target
    assert torch.allclose(before, (after - mean) / std, atol=1e-3)


def test_best_epoch_keeps_the_lowest_loss_and_ignores_nan():
    module = nn.BatchNorm1d(2)
    best = BestEpoch(module)
    for epoch, loss in enumerate([3.0, 1.0, math.nan, 2.0], start=1):
        module.running_mean.fill_(epoch)
        best.update(epoch, loss)
    best.restore()
    assert (best.epoch, best.loss) == (2, 1.0) and torch.equal(module.running_mean, torch.full((2,), 2.0))
    empty = BestEpoch(module)
    assert not empty.update(1, math.nan) and empty.epoch is None


def test_no_mixed_precision_on_cpu():
    precision = Precision(torch.device("cpu"), enabled=True)
    assert precision.name == "fp32" and precision.scaler is None


class _Labels(Dataset):
    """A multi-label split with the attributes ``run_protocol`` reads."""

    multilabel = True
    num_classes = 3
    ignore_index = None

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.images = torch.from_numpy(rng.normal(size=(n, 6, 8, 8)).astype(np.float32)) * 3 + 1
        self.targets = torch.from_numpy((rng.random((n, 3)) > 0.5).astype(np.float32))
        self.stats = type("Stats", (), {"mean": np.zeros(6)})()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "target": self.targets[i]}


class _TinyEncoder:
    state = None
    sha256 = release = ""

    def build(self, bands: int, task: str) -> nn.Module:
        return TinyEncoder(bands=bands)


def test_the_epoch_of_lowest_validation_loss_is_the_one_tested(monkeypatch):
    """Validation losses 3, 1, 2, 4 over four epochs: epoch 2's weights (head and the BatchNorm
    statistics that moved in the frozen encoder) are the ones tested."""
    seen: list[tuple[dict, dict]] = []
    tested: list[tuple[dict, dict]] = []

    def state(encoder, head):
        return {k: v.clone() for k, v in encoder.state_dict().items()}, {
            k: v.clone() for k, v in head.state_dict().items()
        }

    def fake_validation(val, encoder, head, *args):
        seen.append(state(encoder, head))
        return [3.0, 1.0, 2.0, 4.0][len(seen) - 1]

    def fake_evaluate(test, encoder, head, *args):
        tested.append(state(encoder, head))
        return 0.5, math.nan

    optimizers: list[torch.optim.Optimizer] = []
    lrs: list[float] = []

    def recorded_schedule(optimizer, epochs):
        optimizers.append(optimizer)
        return cosine_schedule(optimizer, epochs)

    def fake_validation_with_lr(*args):
        lrs.append(optimizers[0].param_groups[0]["lr"])
        return fake_validation(*args)

    monkeypatch.setattr(benchmark, "cosine_schedule", recorded_schedule)
    monkeypatch.setattr(benchmark, "validation_loss", fake_validation_with_lr)
    monkeypatch.setattr(benchmark, "evaluate", fake_evaluate)
    cfg = BenchmarkConfig(epochs=4, workers=0, frozen_bn="train", lr=0.1)
    out = run_protocol(
        _Labels(8, 0), _Labels(4, 1), _Labels(4, 2), _TinyEncoder(), "frozen", cfg,
        Settings(4, 1e-5, (0.6, 1.0)), Placement(0, 1, torch.device("cpu")),
    )  # fmt: skip
    assert (out.selected_epoch, out.val_loss, out.value) == (2, 1.0, 0.5)
    assert (
        isinstance(optimizers[0], torch.optim.AdamW) and optimizers[0].param_groups[0]["weight_decay"] == 1e-5
    )
    assert lrs == pytest.approx([0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in (1, 2, 3, 4)]), (
        "validated after each epoch's cosine step"
    )
    assert len(seen) == 4 and len(tested) == 1
    (enc_tested, head_tested), (enc_2, head_2), (_, head_4) = tested[0], seen[1], seen[3]
    assert all(torch.equal(head_tested[k], head_2[k]) for k in head_2)
    assert not all(torch.equal(head_tested[k], head_4[k]) for k in head_4)
    assert all(torch.equal(enc_tested[k], enc_2[k]) for k in enc_2)
    assert not torch.equal(enc_2["adapter.1.running_mean"], torch.zeros(4)), "frozen BatchNorm re-adapted"


def test_without_a_validation_split_the_last_epoch_is_tested(monkeypatch):
    monkeypatch.setattr(benchmark, "evaluate", lambda *args: (0.25, math.nan))
    cfg = BenchmarkConfig(epochs=2, workers=0, frozen_bn="eval")
    out = run_protocol(
        _Labels(8, 0), _Labels(0, 1), _Labels(4, 2), _TinyEncoder(), "adapter", cfg,
        Settings(4, 1e-5, (0.6, 1.0)), Placement(0, 1, torch.device("cpu")),
    )  # fmt: skip
    assert out.selected_epoch == 2 and math.isnan(out.val_loss) and out.precision == "fp32"
