"""Masked autoencoder pre-training of a Spec. ViT (SpectralEarth section 5.1: "For MAE, we mask 90% of
the tokens").

Recipe (He et al., "Masked autoencoders are scalable vision learners", 2022), with the published
SpectralEarth settings (``../shared/RECIPE.md``): the encoder sees its class token plus a random 10%
of the patch tokens (each with its position from the encoder's learned table); a light decoder (**1
block**, 512 wide, 16 heads, fixed 2-D sin-cos positions, x first then y, a zero position for the
class token, as MAE's ``get_2d_sincos_pos_embed``) gets the encoded tokens plus a shared learned mask
token at every masked position and predicts the pixel values of each patch; the loss is the MSE on
masked patches only, against per-patch normalised pixels (``norm_pix_loss``).

For a Spec. ViT the tokens come from the spectral adapter followed by the 4x4 patch embedding. The
adapter filters every pixel's spectrum on its own (``(k, 1, 1)`` kernels), so running it on the full
image before masking leaks nothing between patches. The *target* is the input image itself, all bands
(4 x 4 x 202 = 3232 values per patch for EnMAP), not the adapter's 128 features, which would be a
moving, collapsible target.

The encoder is a :class:`~training.models.vit.SpecViT`: ``embed`` gives the patch tokens with their
positions (the learned table, resampled for other grids), ``forward_blocks(visible, keep_cls=True)``
prepends the class token with its position, runs the blocks and the final norm. The sin-cos variant
without a class token (``spec_vit_<size>_sincos``) trains the same way, with no prefix token.
"""

from __future__ import annotations

import torch
from torch import nn

from training.models.vit import Block, SpecViT, init_transformer_weights, sincos_1d


def sincos_2d_xy(dim: int, height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """MAE's fixed 2-D sin-cos table (height * width, dim), row-major tokens: the first half of the
    channels encodes the column (x), the second half the row (y), each as [sin, cos]."""
    if dim % 4:
        raise ValueError(f"2D sin-cos embedding needs a dimension divisible by 4, got {dim}")
    cols = torch.arange(width, device=device).repeat(height)
    rows = torch.arange(height, device=device).repeat_interleave(width)
    return torch.cat([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], dim=1)


def random_masking(
    tokens: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep a random ``1 - mask_ratio`` share of the tokens of each sample (at least one).

    Returns ``visible`` (B, n_keep, D), ``mask`` (B, N) with 1.0 where a token is masked, and
    ``restore`` (B, N): the index into ``[visible, masked]`` order of each original token, used to put
    the decoder's sequence back in place.
    """
    b, n, d = tokens.shape
    n_keep = max(1, round(n * (1.0 - mask_ratio)))
    scores = torch.rand(b, n, device=tokens.device, generator=generator)
    order = scores.argsort(dim=1)  # first n_keep are kept
    restore = order.argsort(dim=1)
    keep = order[:, :n_keep]
    visible = tokens.gather(1, keep.unsqueeze(-1).expand(-1, -1, d))
    mask = torch.ones(b, n, device=tokens.device)
    mask[:, :n_keep] = 0.0
    mask = mask.gather(1, restore)
    return visible, mask, restore


def normalise_last(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Standardise over the last axis (per-patch target normalisation of MAE)."""
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    return (x - mean) / (var + eps).sqrt()


class MAEDecoder(nn.Module):
    """Light transformer decoder: project, insert mask tokens, add positions, blocks, norm, predict.

    ``forward(latent, restore, pos)`` takes the encoded visible tokens (B, n_keep, encoder_dim), the
    ``restore`` indices of :func:`random_masking` and position embeddings (1, N, decoder_dim), and
    returns one prediction of ``out_dim`` values per token, (B, N, out_dim), in the original order.
    ``extra_outputs`` more prediction layers of the same size (SpectralGPT's second target) are in
    ``preds[1:]``, applied by the caller to :meth:`trunk`.
    """

    def __init__(
        self,
        encoder_dim: int,
        decoder_dim: int,
        depth: int,
        num_heads: int,
        out_dim: int,
        extra_outputs: int = 0,
    ) -> None:
        super().__init__()
        self.decoder_dim = decoder_dim
        self.embed = nn.Linear(encoder_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.blocks = nn.ModuleList(Block(decoder_dim, num_heads, 4 * decoder_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.preds = nn.ModuleList(nn.Linear(decoder_dim, out_dim) for _ in range(1 + extra_outputs))
        init_transformer_weights(self)
        nn.init.normal_(self.mask_token, std=0.02)

    def trunk(
        self, latent: torch.Tensor, restore: torch.Tensor, pos: torch.Tensor, prefix: int = 0
    ) -> torch.Tensor:
        """Decoder features (B, N, decoder_dim) of the patch tokens before the prediction layers.

        ``latent`` starts with ``prefix`` tokens that are no patch (the class token), which go
        through the blocks in front of the patch sequence and are dropped at the end; ``pos`` is
        (1, prefix + N, decoder_dim).
        """
        x = self.embed(latent)
        lead, x = x[:, :prefix], x[:, prefix:]
        b, n_keep, d = x.shape
        n = restore.shape[1]
        x = torch.cat([x, self.mask_token.expand(b, n - n_keep, d).to(x.dtype)], dim=1)
        x = x.gather(1, restore.unsqueeze(-1).expand(-1, -1, d))
        x = torch.cat([lead, x], dim=1) + pos.to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, prefix:]

    def forward(
        self, latent: torch.Tensor, restore: torch.Tensor, pos: torch.Tensor, prefix: int = 0
    ) -> torch.Tensor:
        return self.preds[0](self.trunk(latent, restore, pos, prefix))


class MAE(nn.Module):
    """MAE around a Spec. ViT; ``forward(images)`` returns the scalar loss.

    Args:
        encoder: the Spec. ViT to pre-train (kept as ``self.encoder``; save it after training).
        mask_ratio: share of patch tokens hidden from the encoder (0.9, published).
        decoder_dim, decoder_depth, decoder_heads: decoder size (published 512 / 1 / 16).
        norm_pix_loss: per-patch normalised targets (published; SpectralGPT's ablation 5(d) also
            shows normalised targets beat raw ones).
        bands: band count of the images to reconstruct; defaults to ``encoder.bands``.
    """

    def __init__(
        self,
        encoder: SpecViT,
        mask_ratio: float = 0.9,
        decoder_dim: int = 512,
        decoder_depth: int = 1,
        decoder_heads: int = 16,
        norm_pix_loss: bool = True,
        bands: int | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.norm_pix_loss = norm_pix_loss
        self.bands = bands if bands is not None else encoder.bands
        self.patch_size = encoder.patch_size
        self.prefix = int(getattr(encoder, "has_class_token", False))
        """Tokens in front of the patch tokens in the encoder's output: 1 for the class token."""
        self.decoder = MAEDecoder(
            int(encoder.out_channels),
            decoder_dim,
            decoder_depth,
            decoder_heads,
            out_dim=self.patch_size**2 * self.bands,
        )

    def decoder_pos(self, prefix: int, h: int, w: int, device: torch.device) -> torch.Tensor:
        """(1, prefix + h * w, decoder_dim): zeros for the class token, then the x-y sin-cos table."""
        grid = sincos_2d_xy(self.decoder.decoder_dim, h, w, device=device)
        lead = torch.zeros(prefix, grid.shape[1], device=device, dtype=grid.dtype)
        return torch.cat([lead, grid]).unsqueeze(0)

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, (H/p) * (W/p), p * p * bands), tokens row-major like the encoder."""
        b, c, hh, ww = images.shape
        p = self.patch_size
        x = images.reshape(b, c, hh // p, p, ww // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (hh // p) * (ww // p), p * p * c)

    def forward_parts(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Loss plus prediction (B, N, p*p*bands), target and mask (B, N), for inspection and plots."""
        if images.shape[1] != self.bands:
            raise ValueError(f"MAE reconstructs {self.bands} bands, got images with {images.shape[1]}")
        tokens, h, w = self.encoder.embed(images)
        visible, mask, restore = random_masking(tokens, self.mask_ratio, generator)
        latent = self.encoder.forward_blocks(visible, keep_cls=True)  # class token + visible tokens
        pos = self.decoder_pos(self.prefix, h, w, images.device)
        pred = self.decoder(latent, restore, pos, self.prefix)
        target = self.patchify(images)
        if self.norm_pix_loss:
            target = normalise_last(target)
        per_token = (pred - target).pow(2).mean(dim=-1)
        loss = (per_token * mask).sum() / mask.sum().clamp_min(1.0)
        return {"loss": loss, "pred": pred, "target": target, "mask": mask}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> scalar MSE on the masked patches."""
        return self.forward_parts(images)["loss"]

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """Same as ``forward``."""
        return self.forward(images)
