"""Augmentations keep shapes and band values, are exact where they should be, and are seeded."""

from __future__ import annotations

import pytest
import torch

from training.augment import (
    Augment,
    MultiCrop,
    gaussian_blur,
    random_flip,
    random_resized_crop,
    random_rot90,
    sample_crop_boxes,
    two_views,
)
from training.recipes import recipe


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def batch() -> torch.Tensor:
    # Distinct values everywhere, and each band in its own range so a rescaled band would show.
    x = torch.rand(4, 5, 16, 16, generator=_gen(1))
    return x + torch.arange(5.0).view(1, 5, 1, 1) * 10


def test_crop_boxes_follow_the_scale_and_stay_inside():
    boxes = sample_crop_boxes(2000, 128, 128, scale=(0.2, 1.0), generator=_gen())
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= 128).all() and (left + w <= 128).all()
    area = (h * w).float() / 128**2
    assert area.min() > 0.18 and area.max() <= 1.0
    ratio = w.float() / h.float()
    assert ratio.min() > 0.7 and ratio.max() < 1.45


def test_nearest_crop_returns_input_values_of_the_same_band(batch):
    out = random_resized_crop(batch, 12, generator=_gen(), interpolation="nearest")
    assert out.shape == (4, 5, 12, 12)
    for i in range(4):
        for band in range(5):
            assert torch.isin(out[i, band], batch[i, band]).all()


def test_bilinear_crop_stays_within_each_band_range(batch):
    out = random_resized_crop(batch, 24, generator=_gen(), interpolation="bilinear")
    assert out.shape == (4, 5, 24, 24)
    lo = batch.amin(dim=(-2, -1), keepdim=True)
    hi = batch.amax(dim=(-2, -1), keepdim=True)
    assert ((out >= lo - 1e-5) & (out <= hi + 1e-5)).all()


def test_full_size_crop_is_an_exact_copy(batch):
    out = random_resized_crop(batch, 16, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=_gen())
    torch.testing.assert_close(out, batch, rtol=0, atol=1e-5)


def test_crop_moves_mask_with_image():
    # The image encodes the pixel index, so the mask must match the image pixel for pixel.
    idx = torch.arange(16 * 16).view(1, 1, 16, 16).expand(3, 2, 16, 16).float()
    mask = idx[:, 0].long()
    out, m = random_resized_crop(idx, 10, generator=_gen(), interpolation="nearest", mask=mask)
    assert m.dtype == torch.long and m.shape == (3, 10, 10)
    assert torch.equal(out[:, 0].long(), m)


def test_flips_and_rotations_are_exact_and_per_sample(batch):
    out = random_flip(batch, 1.0, 0.0, generator=_gen())
    assert torch.equal(out, batch.flip(-1))
    out = random_flip(batch, 0.0, 1.0, generator=_gen())
    assert torch.equal(out, batch.flip(-2))
    out = random_rot90(batch, generator=_gen(3))
    for i in range(4):
        assert any(torch.equal(out[i], torch.rot90(batch[i], k, dims=(-2, -1))) for k in range(4))
        assert torch.equal(out[i].flatten().sort().values, batch[i].flatten().sort().values)


def test_rotation_and_flip_move_mask_alike():
    img = torch.arange(2 * 8 * 8).view(2, 1, 8, 8).float()
    mask = img[:, 0].long()
    out, m = random_rot90(img, generator=_gen(), mask=mask)
    assert torch.equal(out[:, 0].long(), m)
    out, m = random_flip(img, 0.5, 0.5, generator=_gen(), mask=mask)
    assert torch.equal(out[:, 0].long(), m)


def test_blur_keeps_uniform_spectra_and_band_ranges(batch):
    uniform = torch.ones(2, 5, 16, 16) * torch.linspace(0.1, 0.9, 5).view(1, 5, 1, 1)
    torch.testing.assert_close(gaussian_blur(uniform, p=1.0, generator=_gen()), uniform)
    out = gaussian_blur(batch, p=1.0, generator=_gen())
    lo = batch.amin(dim=(-2, -1), keepdim=True)
    hi = batch.amax(dim=(-2, -1), keepdim=True)
    assert ((out >= lo - 1e-5) & (out <= hi + 1e-5)).all()
    assert not torch.equal(out, batch)
    assert torch.equal(gaussian_blur(batch, p=0.0, generator=_gen()), batch)


def test_seeded_generator_reproduces_views(batch):
    aug = Augment(size=12)
    assert torch.equal(aug(batch, _gen(7)), aug(batch, _gen(7)))
    assert not torch.equal(aug(batch, _gen(7)), aug(batch, _gen(8)))


def test_two_views_are_independent(batch):
    aug = Augment(size=12, interpolation="nearest", blur_p=0.0)
    v1, v2 = two_views(batch, None, aug, _gen())
    assert v1.shape == v2.shape == (4, 5, 12, 12)
    assert not torch.equal(v1, v2)
    other = batch + 100
    w1, w2 = two_views(batch, other, aug, _gen())
    assert torch.isin(w1, batch).all() and torch.isin(w2, other).all()


def test_multicrop_sizes_and_sources(batch):
    crops = MultiCrop(global_size=16, local_size=8, n_local=3, interpolation="nearest", global_blur_p=(0, 0),
                      local_blur_p=0)  # fmt: skip
    other = batch + 100
    globals_, locals_ = crops(batch, other, _gen())
    assert [g.shape for g in globals_] == [(4, 5, 16, 16)] * 2
    assert [v.shape for v in locals_] == [(4, 5, 8, 8)] * 3
    assert torch.isin(globals_[0], batch).all() and torch.isin(globals_[1], other).all()
    assert torch.isin(locals_[0], batch).all() and torch.isin(locals_[1], other).all()


def test_the_published_views_of_each_method():
    """RECIPE.md "Pretraining": the numbers each recipe's views carry at 128 px."""
    moco = recipe("moco").views(128, {})
    assert (moco.size, moco.scale, moco.blur_p, moco.blur_kernel, moco.blur_sigma) == (
        128, (0.08, 1.0), 0.5, 13, (0.1, 2.0),
    )  # fmt: skip
    assert (moco.p_horizontal, moco.p_vertical, moco.rotate) == (0.5, 0.5, False)
    dino = recipe("dino").views(128, {})
    assert (dino.global_size, dino.n_local, dino.global_scale) == (128, 0, (0.05, 1.0))
    assert (dino.global_blur_p, dino.blur_kernel, dino.rotate) == ((0.5, 0.5), 13, False)
    mae = recipe("mae").views(128, {})
    assert (mae.scale, mae.blur_p, mae.rotate, mae.p_horizontal, mae.p_vertical) == (
        (0.4, 1.0),
        0.0,
        False,
        0.5,
        0.5,
    )


def test_dino_views_are_two_globals_one_per_acquisition(batch):
    views = recipe("dino").views(16, {"interpolation": "nearest", "global_blur_p": [0, 0]})
    other = batch + 100
    globals_, locals_ = views(batch, other, _gen())
    assert locals_ == [] and [g.shape for g in globals_] == [(4, 5, 16, 16)] * 2
    assert torch.isin(globals_[0], batch).all() and torch.isin(globals_[1], other).all()


def test_augment_overrides_take_lists_and_refuse_unknown_keys():
    assert recipe("moco").views(32, {"scale": [0.2, 1.0], "rotate": True}).scale == (0.2, 1.0)
    with pytest.raises(ValueError, match="unknown keys blur for Augment"):
        recipe("moco").views(32, {"blur": 0.5})


def test_a_blur_kernel_wider_than_the_image_is_narrowed(batch):
    small = batch[..., :6, :6]
    out = gaussian_blur(small, p=1.0, kernel_size=13, generator=_gen())
    assert out.shape == small.shape and not torch.equal(out, small)
