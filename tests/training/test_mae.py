"""MAE and SpectralGPT-MAE: masking, targets, and a few optimisation steps that lower the loss; the
published MAE settings (../shared/RECIPE.md): a 1-block 512-wide decoder with 16 heads and x-then-y
sin-cos positions, the encoder seeing the class token plus the visible tokens."""

from __future__ import annotations

import pytest
import torch

from training.methods.mae import MAE, random_masking, sincos_2d_xy
from training.methods.spectral_mae import SpectralMAE
from training.models.registry import build_encoder
from training.models.vit import sincos_1d

BANDS = 7


def _images(seed: int = 0, size: int = 32) -> torch.Tensor:
    """A fixed, spatially smooth batch with correlated bands (learnable, like real spectra)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(4, 3, size // 4, size // 4, generator=g)
    base = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    mixing = torch.randn(BANDS, 3, generator=g)
    return torch.einsum("bchw,kc->bkhw", base, mixing) + 0.05 * torch.randn(4, BANDS, size, size, generator=g)


def _tiny_mae(mask_ratio: float = 0.9) -> MAE:
    encoder = build_encoder("spec_vit", BANDS, embed_dim=64, depth=2, num_heads=4)
    return MAE(encoder, mask_ratio=mask_ratio, decoder_dim=32, decoder_depth=1, decoder_heads=4)


def _tiny_spectral_mae() -> SpectralMAE:
    encoder = build_encoder(
        "spectralgpt_s", BANDS, embed_dim=64, depth=2, num_heads=4, num_groups=2, img_size=32
    )
    return SpectralMAE(encoder, mask_ratio=0.9, decoder_dim=32, decoder_depth=1, decoder_heads=4)


def _train(method: torch.nn.Module, images: torch.Tensor, steps: int, lr: float) -> tuple[float, float]:
    """Loss on a fixed mask before and after ``steps`` of Adam on one batch."""

    def fixed_loss() -> float:
        with torch.no_grad():
            return float(method.forward_parts(images, generator=torch.Generator().manual_seed(1))["loss"])

    first = fixed_loss()
    opt = torch.optim.Adam(method.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = method(images)
        loss.backward()
        opt.step()
    return first, fixed_loss()


def test_random_masking_keeps_ten_percent_and_restores_order() -> None:
    tokens = torch.arange(2 * 50, dtype=torch.float32).reshape(2, 50, 1).expand(-1, -1, 3).contiguous()
    visible, mask, restore = random_masking(tokens, 0.9, torch.Generator().manual_seed(0))
    assert visible.shape == (2, 5, 3)
    assert mask.shape == (2, 50) and mask.sum(dim=1).tolist() == [45.0, 45.0]
    # the visible tokens are exactly the unmasked ones, and restore puts the sequence back in order
    for i in range(2):
        kept = tokens[i, mask[i] == 0, 0].sort().values
        assert torch.equal(visible[i, :, 0].sort().values, kept)
    shuffled = torch.cat([visible, torch.full((2, 45, 3), -1.0)], dim=1)
    back = shuffled.gather(1, restore.unsqueeze(-1).expand(-1, -1, 3))
    assert torch.equal(back[mask == 0], tokens[mask == 0])
    assert (back[mask == 1] == -1).all()


def test_mae_patchify_follows_token_order() -> None:
    mae = _tiny_mae()
    images = torch.randn(1, BANDS, 16, 16)
    patches = mae.patchify(images)
    assert patches.shape == (1, 16, 4 * 4 * BANDS)
    # token 5 is row 1, column 1 of the 4 x 4 grid; its values are (row, column, band)
    expected = images[0, :, 4:8, 4:8].permute(1, 2, 0).reshape(-1)
    assert torch.equal(patches[0, 5], expected)


def test_mae_loss_is_on_ninety_percent_masked_tokens() -> None:
    torch.manual_seed(0)
    mae = _tiny_mae()
    parts = mae.forward_parts(_images())
    assert parts["loss"].ndim == 0 and torch.isfinite(parts["loss"])
    assert parts["mask"].shape == (4, 64)
    assert parts["mask"].mean().item() == pytest.approx(58 / 64)  # 6 of 64 tokens visible
    assert parts["pred"].shape == parts["target"].shape == (4, 64, 4 * 4 * BANDS)
    # per-patch normalised target
    assert torch.allclose(parts["target"].mean(dim=-1), torch.zeros(4, 64), atol=1e-5)
    with pytest.raises(ValueError, match="bands"):
        mae(torch.randn(1, BANDS + 1, 16, 16))


def test_mae_training_lowers_the_loss_and_trains_the_encoder() -> None:
    torch.manual_seed(0)
    mae = _tiny_mae()
    before = [p.detach().clone() for p in mae.encoder.adapter.parameters()]
    first, last = _train(mae, _images(size=16), steps=30, lr=1e-3)
    print(f"MAE loss {first:.4f} -> {last:.4f}")
    assert last < 0.9 * first
    assert any(not torch.equal(a, b) for a, b in zip(before, mae.encoder.adapter.parameters(), strict=True))


def test_spectral_mae_losses_and_mask() -> None:
    torch.manual_seed(0)
    method = _tiny_spectral_mae()
    parts = method.forward_parts(_images())
    assert parts["mask"].shape == (4, 2, 4, 4)  # (B, groups, h, w): 3D token mask
    assert parts["mask"].mean().item() == pytest.approx(29 / 32)  # round(32 * 0.1) = 3 visible
    for key in ("loss", "token_loss", "spectral_loss"):
        assert parts[key].ndim == 0 and torch.isfinite(parts[key])
    assert torch.allclose(parts["loss"], parts["token_loss"] + parts["spectral_loss"])


def test_spectral_mae_training_lowers_the_loss() -> None:
    torch.manual_seed(0)
    method = _tiny_spectral_mae()
    first, last = _train(method, _images(), steps=30, lr=1e-3)
    print(f"SpectralGPT-MAE loss {first:.4f} -> {last:.4f}")
    assert last < 0.9 * first


def test_methods_expose_their_encoder() -> None:
    mae = _tiny_mae()
    smae = _tiny_spectral_mae()
    assert mae.encoder.forward_features(torch.randn(1, BANDS, 16, 16)).shape == (1, 64, 4, 4)
    assert smae.encoder.forward_features(torch.randn(1, BANDS, 32, 32)).shape == (1, 64, 4, 4)


def test_mae_defaults_are_the_published_recipe() -> None:
    encoder = build_encoder("spec_vit", BANDS, embed_dim=64, depth=1, num_heads=4, img_size=32)
    mae = MAE(encoder)
    assert (mae.mask_ratio, mae.norm_pix_loss, mae.prefix) == (0.9, True, 1)
    decoder = mae.decoder
    assert len(decoder.blocks) == 1 and decoder.decoder_dim == 512
    assert decoder.blocks[0].attn.num_heads == 16
    assert decoder.preds[0].out_features == 4 * 4 * BANDS


def test_mae_encoder_sees_the_class_token_and_the_visible_tokens() -> None:
    torch.manual_seed(0)
    mae = _tiny_mae()
    seen = []
    mae.encoder.vit_core.blocks[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    images = _images()
    mae(images).backward()
    core = mae.encoder.vit_core
    assert seen[0].shape == (4, 1 + 6, 64)  # class token + 6 of the 64 patch tokens
    torch.testing.assert_close(
        seen[0][:, 0], (core.cls_token + core.pos_embed[:, :1]).expand(4, -1, -1)[:, 0]
    )
    assert core.cls_token.grad is not None and core.cls_token.grad.abs().sum() > 0


def test_mae_decoder_positions_are_x_then_y_with_a_zero_row_for_the_class_token() -> None:
    table = sincos_2d_xy(16, 3, 5)
    rows = torch.arange(3).repeat_interleave(5)
    cols = torch.arange(5).repeat(3)
    torch.testing.assert_close(table[:, :8], sincos_1d(8, cols))  # first half: the column (x)
    torch.testing.assert_close(table[:, 8:], sincos_1d(8, rows))  # second half: the row (y)
    mae = _tiny_mae()
    pos = mae.decoder_pos(1, 4, 4, torch.device("cpu"))
    assert pos.shape == (1, 17, 32) and not pos[0, 0].any()
    torch.testing.assert_close(pos[0, 1:], sincos_2d_xy(32, 4, 4))


def test_mae_trains_the_sincos_variant_without_a_class_token() -> None:
    torch.manual_seed(0)
    encoder = build_encoder(
        "spec_vit", BANDS, embed_dim=64, depth=1, num_heads=4, class_token=False, pos="sincos"
    )
    mae = MAE(encoder, decoder_dim=32, decoder_depth=1, decoder_heads=4)
    parts = mae.forward_parts(_images())
    assert mae.prefix == 0 and parts["pred"].shape == (4, 64, 4 * 4 * BANDS) and torch.isfinite(parts["loss"])
