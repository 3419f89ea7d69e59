"""SpectralGPT's encoder: 3D spatial-spectral tokens and a ViT over them.

Source: SpectralGPT (Hong et al.), sections 2.3, 2.4 and 2.8. A (H, W, D) spectral image is cut into
non-overlapping p x p x k tokens, (H/p) x (W/p) x (D/k) of them, each linearly projected by one shared
matrix; "two learnable positional embeddings. One of these embeddings is dedicated to spatial
information, while the other is tailored to capture variations across spectral channels" (the
separable space/time embeddings of Feichtenhofer et al. [30]). The paper's setting is Sentinel-2 with
12 bands and 8 x 8 x 3 tokens: 4 spectral groups, 96 x 96 px -> 12 x 12 x 4 tokens.

Scaling to hyperspectral band counts (our choice, documented here): keeping k = 3 would give 68
spectral groups (about 17,000 tokens for a 128 px EnMAP patch), far beyond what attention can take.
We keep the spatial token size p = 8 and fix the *number* of spectral groups instead, so each token
covers a contiguous slice of the spectrum as SpectralGPT's do (a group of three Sentinel-2 bands spans
a few hundred nm). The default is 8 groups: the group size is k = ceil(bands / 8), i.e. 26 bands
(about 250 nm) for EnMAP's 202 and 30 for DESIS's 235; a 128 px patch gives 16 x 16 x 8 = 2048
tokens, of which 205 are visible at 90 % masking. When the band count is not a multiple of k the last
band is repeated to fill the last group (202 -> 208, 235 -> 240): replicate padding keeps the
per-token statistics of the last group physical, unlike zeros.

``forward_features`` averages the group tokens at each spatial position into one (B, D, H/p, W/p)
map, so the same heads as for Spec. ViT apply (SpectralGPT itself merges "the four tokens per pixel"
into one for segmentation). There is no spectral adapter: ``adapter`` is ``None``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from training.models.vit import VIT_SIZES, Block, init_transformer_weights


def group_size(bands: int, num_groups: int) -> int:
    """Bands per spectral token so that ``num_groups`` groups cover ``bands`` (ceil division)."""
    return math.ceil(bands / num_groups)


class SpectralGPTEncoder(nn.Module):
    """3D tokeniser (Conv3d, kernel = stride = (k, p, p)) + separable learned position embeddings + ViT.

    Args:
        bands: band count the model is built for (202 for SpectralEarth).
        img_size: image size for the learned spatial position table (128 px -> 16 x 16); other sizes
            are served by bicubic interpolation of the table (progressive training on other sizes).
        patch_size: spatial token size p (8, as SpectralGPT).
        num_groups: spectral groups per pixel column (see the module docstring); ``spectral_group``
            overrides the group size k directly (``spectral_group=3`` on 12 bands is the paper).
        embed_dim, depth, num_heads, mlp_dim: transformer size.
    """

    def __init__(
        self,
        bands: int = 202,
        img_size: int = 128,
        patch_size: int = 8,
        num_groups: int = 8,
        spectral_group: int | None = None,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.bands = bands
        self.patch_size = patch_size
        self.spectral_group = spectral_group if spectral_group is not None else group_size(bands, num_groups)
        self.num_groups = math.ceil(bands / self.spectral_group)
        self.grid = img_size // patch_size
        self.embed_dim = embed_dim
        self.adapter = None
        self.out_channels = embed_dim
        self.output_stride = patch_size
        k, p = self.spectral_group, patch_size
        self.patch_embed = nn.Conv3d(1, embed_dim, kernel_size=(k, p, p), stride=(k, p, p))
        self.pos_spatial = nn.Parameter(torch.zeros(1, self.grid * self.grid, embed_dim))
        self.pos_spectral = nn.Parameter(torch.zeros(1, self.num_groups, embed_dim))
        mlp_dim = mlp_dim if mlp_dim is not None else 4 * embed_dim
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        init_transformer_weights(self)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.trunc_normal_(self.pos_spatial, std=0.02)
        nn.init.trunc_normal_(self.pos_spectral, std=0.02)

    @property
    def token_numel(self) -> int:
        """Pixel values in one 3D token: k * p * p."""
        return self.spectral_group * self.patch_size**2

    def pad_bands(self, images: torch.Tensor) -> torch.Tensor:
        """Repeat the last band so the band count is a multiple of the group size k."""
        bands = images.shape[1]
        groups = math.ceil(bands / self.spectral_group)
        if groups > self.num_groups:
            raise ValueError(
                f"{bands} bands make {groups} spectral groups of {self.spectral_group}; "
                f"this encoder has position embeddings for {self.num_groups}"
            )
        missing = groups * self.spectral_group - bands
        if missing:
            images = torch.cat([images, images[:, -1:].expand(-1, missing, -1, -1)], dim=1)
        return images

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, G, h, w, k * p * p) pixel values of each 3D token (after padding).

        Token values are ordered (band in group, row, column), matching the Conv3d kernel layout.
        """
        x = self.pad_bands(images)
        b, d, hh, ww = x.shape
        k, p = self.spectral_group, self.patch_size
        x = x.reshape(b, d // k, k, hh // p, p, ww // p, p)
        return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(b, d // k, hh // p, ww // p, k * p * p)

    def pos_embed(self, groups: int, h: int, w: int) -> torch.Tensor:
        """(1, groups * h * w, D): spectral embedding of the group + spatial embedding of the cell."""
        spatial = self.pos_spatial
        if (h, w) != (self.grid, self.grid):
            table = spatial.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
            table = F.interpolate(table, size=(h, w), mode="bicubic", align_corners=False)
            spatial = table.flatten(2).transpose(1, 2)
        pos = self.pos_spectral[:, :groups, None, :] + spatial[:, None, :, :]  # (1, G, h*w, D)
        return pos.reshape(1, groups * h * w, self.embed_dim)

    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Tokens (B, G * h * w, D) in (group, row, column) order with positions, and (G, h, w)."""
        x = self.pad_bands(images)
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not divisible by patch {self.patch_size}")
        x = self.patch_embed(x.unsqueeze(1))  # (B, D, G, h, w)
        g, h, w = x.shape[-3:]
        tokens = x.flatten(2).transpose(1, 2)
        return tokens + self.pos_embed(g, h, w).to(tokens.dtype), (g, h, w)

    def forward_blocks(self, tokens: torch.Tensor) -> torch.Tensor:
        """Transformer blocks and final norm on (B, N, D) tokens."""
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def forward_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, G * h * w, D) normalised tokens."""
        tokens, _ = self.embed(images)
        return self.forward_blocks(tokens)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, D, H / p, W / p): group tokens averaged per spatial position."""
        tokens, (g, h, w) = self.embed(images)
        tokens = self.forward_blocks(tokens)
        b = tokens.shape[0]
        return tokens.reshape(b, g, h, w, self.embed_dim).mean(dim=1).permute(0, 3, 1, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_features(images)


def spectralgpt(size: str, bands: int = 202, **kw: object) -> SpectralGPTEncoder:
    """SpectralGPT encoder of a named ViT size (``s``, ``b``, ``l``, ``h``); ``kw`` overrides fields."""
    args = VIT_SIZES[size.lower()].with_overrides(**kw)
    return SpectralGPTEncoder(bands=bands, **args)  # type: ignore[arg-type]
