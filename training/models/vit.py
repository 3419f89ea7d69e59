"""Spec. ViT: the spectral adapter, then a plain pre-norm ViT with 4x4 patches on 128 channels.

Source: SpectralEarth section 4.2 and supplement 8.1: "The 1D convolutions and pooling are placed
before the patch embedding layer [...] We use 4x4 patches instead of the typical 16x16 patches"; "we
set the number of input channels in the projection layer to 128". A 128 x 128 px patch therefore
gives 32 x 32 = 1024 tokens. Section 5.1 pre-trains S with MoCo/DINO/MAE and B/L/H/g with MAE only;
ViT-g follows [51] (DINOv2's ViT-g/14 sizes from Zhai et al.: width 1408, depth 40, 16 heads,
MLP 6144).

Choices made here (not fixed by the paper):

- Position embeddings are *fixed* 2D sin-cos (as in MAE, He et al. 2022), computed for the token
  grid of each input. They have no parameters, so any image size divisible by the patch size works
  (SpectralGPT-style progressive training on other sizes, Hyperview resized images) with no
  interpolation of learned tables.
- No class token: every consumer here (linear probe after global average pooling, segmentation
  heads, MAE) uses the patch tokens, and DESIGN's heads pool the token map.
- Blocks are pre-norm (LayerNorm -> attention -> residual, LayerNorm -> MLP -> residual) with
  attention through ``torch.nn.functional.scaled_dot_product_attention`` (flash/memory-efficient
  kernels on GPU).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.models.adapter import SpectralAdapter


@dataclass(frozen=True)
class ViTSize:
    """Width, depth, heads and MLP width of one ViT size."""

    embed_dim: int
    depth: int
    num_heads: int
    mlp_dim: int

    def with_overrides(self, **kw: object) -> dict[str, object]:
        """Constructor arguments of this size, any of them overridden by ``kw``."""
        return {**dataclasses.asdict(self), **kw}


#: Usual ViT sizes (Dosovitskiy et al.; ViT-g/14 from Zhai et al. "Scaling vision transformers").
VIT_SIZES: dict[str, ViTSize] = {
    "s": ViTSize(384, 12, 6, 1536),
    "b": ViTSize(768, 12, 12, 3072),
    "l": ViTSize(1024, 24, 16, 4096),
    "h": ViTSize(1280, 32, 16, 5120),
    "g": ViTSize(1408, 40, 16, 6144),
}


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """Sin-cos embedding (len(positions), dim) of 1D positions (Vaswani et al.), dim even."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even dimension, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64, device=positions.device) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    angles = positions.to(torch.float64).reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_2d(dim: int, height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed 2D sin-cos position embedding (height * width, dim), row-major token order.

    Half of the channels encode the row, half the column (as MAE's 2D sin-cos); dim divisible by 4.
    """
    if dim % 4:
        raise ValueError(f"2D sin-cos embedding needs a dimension divisible by 4, got {dim}")
    rows = torch.arange(height, device=device).repeat_interleave(width)
    cols = torch.arange(width, device=device).repeat(height)
    return torch.cat([sincos_1d(dim // 2, rows), sincos_1d(dim // 2, cols)], dim=1)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and ``scaled_dot_product_attention``."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, heads, N, head_dim)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def init_transformer_weights(module: nn.Module) -> None:
    """Xavier-uniform linear layers, zero biases, unit LayerNorm (the MAE/ViT initialisation)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SpecViT(nn.Module):
    """Spectral adapter + ViT on 128 channels with ``patch_size`` x ``patch_size`` patches.

    Args:
        bands: nominal band count (202 for SpectralEarth). The adapter accepts any count; this is
            recorded for pixel-reconstruction decoders (MAE) that must know how many values to predict.
        embed_dim, depth, num_heads, mlp_dim: transformer size (see :data:`VIT_SIZES`); small values
            give the tiny test models.
        patch_size: 4 as published (128 px -> 32 x 32 tokens).
        adapter: use the spectral adapter (default). Without it the patch embedding takes the raw
            ``bands`` channels (the "w/o adapter" ablation).

    ``out_channels`` is ``embed_dim``; ``output_stride`` is ``patch_size``.
    """

    def __init__(
        self,
        bands: int = 202,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_dim: int | None = None,
        patch_size: int = 4,
        adapter: bool = True,
    ) -> None:
        super().__init__()
        self.bands = bands
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.adapter: SpectralAdapter | None = SpectralAdapter() if adapter else None
        in_channels = self.adapter.out_channels if self.adapter is not None else bands
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        mlp_dim = mlp_dim if mlp_dim is not None else 4 * embed_dim
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.out_channels = embed_dim
        self.output_stride = patch_size
        init_transformer_weights(self)
        # Patch embedding initialised like a linear layer (MAE): xavier on the flattened kernel.
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))

    def pos_embed(self, height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
        """Fixed sin-cos embedding (1, height * width, D) of a ``height`` x ``width`` token grid."""
        return sincos_2d(self.embed_dim, height, width, device=device).unsqueeze(0)

    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """Adapter, patch embedding and position embedding: (B, N, D) tokens and the grid size."""
        x = self.adapter(images) if self.adapter is not None else images
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not divisible by patch {self.patch_size}")
        x = self.patch_embed(x)  # (B, D, h, w)
        h, w = x.shape[-2:]
        tokens = x.flatten(2).transpose(1, 2)
        return tokens + self.pos_embed(h, w, device=tokens.device).to(tokens.dtype), h, w

    def forward_blocks(self, tokens: torch.Tensor) -> torch.Tensor:
        """Transformer blocks and final norm on (B, N, D) tokens (any subset, e.g. MAE's visible)."""
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def forward_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, N, D) normalised tokens, N = (H / p) * (W / p), row-major."""
        tokens, _, _ = self.embed(images)
        return self.forward_blocks(tokens)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, D, H / p, W / p) token map (32 x 32 for 128 px)."""
        tokens, h, w = self.embed(images)
        tokens = self.forward_blocks(tokens)
        return tokens.transpose(1, 2).reshape(tokens.shape[0], self.embed_dim, h, w)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_features(images)


def spec_vit(size: str, bands: int = 202, **kw: object) -> SpecViT:
    """Spec. ViT of a named size (``s``, ``b``, ``l``, ``h``, ``g``); ``kw`` overrides any field."""
    return SpecViT(bands=bands, **VIT_SIZES[size.lower()].with_overrides(**kw))  # type: ignore[arg-type]
