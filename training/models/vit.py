"""Spec. ViT as published: the spectral adapter, then a timm-style ViT with 4x4 patches on 128 channels.

Source: the published backbone code (``../shared/RECIPE.md``, "Backbones"): the adapter, then timm's
``VisionTransformer(img_size=128, patch_size=4, in_chans=128, qkv_bias=True, LayerNorm eps 1e-6,
mlp_ratio=4)`` with its defaults: a **class token**, a **learned position table (1, 1025, D)** (the
class token's position first, then the 32 x 32 patch grid row-major) and, as pooled output, the class
token after the final norm. Sizes (width / depth / heads): S 384/12/6, B 768/12/12, L 1024/24/16,
H 1280/32/16, g 1536/40/24 (MLP 6144).

The transformer lives under ``self.vit_core`` with timm's names (``cls_token``, ``pos_embed``,
``patch_embed.proj``, ``blocks.<i>.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``,
``norm``) and the adapter under ``self.spectral_adapter``, so ``state_dict()`` has exactly the
released backbone keys (the released ``vit_core.head.*`` classifier is not part of the encoder).
Initialisation follows timm: position table truncated normal (std 0.02), class token normal
(std 1e-6), linear layers truncated normal (std 0.02) with zero biases.

Other image sizes (tiny tests, resized Hyperview images): the grid part of the learned table is
resampled bicubically to the token grid (as timm's ``dynamic_img_size``); at 128 px it is used as is.

Blocks are pre-norm (LayerNorm -> attention -> residual, LayerNorm -> GELU MLP -> residual), with
attention through ``torch.nn.functional.scaled_dot_product_attention`` (the same softmax(QK^T/sqrt(d))V
as timm, with flash/memory-efficient kernels on GPU).

Earlier variant kept as ``spec_vit_<size>_sincos`` (``class_token=False, pos="sincos"``): no class
token, fixed 2D sin-cos positions for any grid, pooled output = mean of the normalised patch tokens;
it is what this package trained before the published code was read.
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


#: The published sizes (RECIPE.md): g is 1536 wide with 24 heads, not ViT-g/14's 1408 / 16.
VIT_SIZES: dict[str, ViTSize] = {
    "s": ViTSize(384, 12, 6, 1536),
    "b": ViTSize(768, 12, 12, 3072),
    "l": ViTSize(1024, 24, 16, 4096),
    "h": ViTSize(1280, 32, 16, 5120),
    "g": ViTSize(1536, 40, 24, 6144),
}

#: Position embeddings a :class:`SpecViT` can use.
POSITIONS = ("learned", "sincos")


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

    The first half of the channels encodes the column (x), the second half the row (y), as MAE's
    ``get_2d_sincos_pos_embed`` (which the published MAE decoder uses); dim divisible by 4.
    """
    if dim % 4:
        raise ValueError(f"2D sin-cos embedding needs a dimension divisible by 4, got {dim}")
    rows = torch.arange(height, device=device).repeat_interleave(width)
    cols = torch.arange(width, device=device).repeat(height)
    return torch.cat([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], dim=1)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (with bias) and a projection."""

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


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2 (timm's names, so the keys are ``mlp.fc1.*`` and ``mlp.fc2.*``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def init_transformer_weights(module: nn.Module) -> None:
    """Xavier-uniform linear layers, zero biases, unit LayerNorm (the MAE initialisation)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_timm_weights(module: nn.Module) -> None:
    """timm's ViT initialisation of linear layers: truncated normal (std 0.02), zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` patches projected by a strided conv (timm: ``patch_embed.proj``)."""

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class ViTCore(nn.Module):
    """The transformer with timm's parameter names: what the published ``vit_core`` holds."""

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_dim: int,
        patch_size: int,
        grid: int,
        class_token: bool,
        pos: str,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, embed_dim, patch_size)
        self.cls_token: nn.Parameter | None = None
        self.pos_embed: nn.Parameter | None = None
        if class_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        if pos == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, int(class_token) + grid * grid, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)


class SpecViT(nn.Module):
    """Spectral adapter + ViT on 128 channels with ``patch_size`` x ``patch_size`` patches.

    Args:
        bands: nominal band count (202 for SpectralEarth). The adapter accepts any count; this is
            recorded for pixel-reconstruction decoders (MAE) that must know how many values to predict.
        embed_dim, depth, num_heads, mlp_dim: transformer size (see :data:`VIT_SIZES`); small values
            give the tiny test models.
        patch_size: 4 as published (128 px -> 32 x 32 tokens).
        img_size: image size the learned position table is made for (128 as published).
        class_token: prepend a learned class token (published); its final-norm output is ``forward``.
        pos: ``"learned"`` table (published) or fixed ``"sincos"`` (the earlier variant).
        adapter: use the spectral adapter (default). Without it the patch embedding takes the raw
            ``bands`` channels (the "w/o adapter" ablation).

    ``forward(x)`` is the pooled embedding (B, D): the class token after the final norm, or the mean
    of the normalised patch tokens without a class token. ``forward_features(x)`` is the patch-token
    map (B, D, H / p, W / p) after the final norm, without the class token. ``out_channels`` is
    ``embed_dim``; ``output_stride`` is ``patch_size``.
    """

    def __init__(
        self,
        bands: int = 202,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_dim: int | None = None,
        patch_size: int = 4,
        img_size: int = 128,
        class_token: bool = True,
        pos: str = "learned",
        adapter: bool = True,
    ) -> None:
        super().__init__()
        if pos not in POSITIONS:
            raise ValueError(f"pos must be one of {POSITIONS}, got {pos!r}")
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not divisible by patch {patch_size}")
        self.bands = bands
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.grid = img_size // patch_size
        self.has_class_token = class_token
        self.pos = pos
        self.spectral_adapter: SpectralAdapter | None = SpectralAdapter() if adapter else None
        in_channels = 128 if adapter else bands
        mlp_dim = mlp_dim if mlp_dim is not None else 4 * embed_dim
        self.vit_core = ViTCore(
            in_channels, embed_dim, depth, num_heads, mlp_dim, patch_size, self.grid, class_token, pos
        )
        self.out_channels = embed_dim
        self.output_stride = patch_size
        self._init_weights()

    def _init_weights(self) -> None:
        """timm's initialisation for the published model; MAE's (xavier) for the sin-cos variant."""
        core = self.vit_core
        if self.pos == "learned":
            init_timm_weights(core)
            nn.init.trunc_normal_(core.pos_embed, std=0.02)
        else:
            init_transformer_weights(core)
            w = core.patch_embed.proj.weight  # like a linear layer (MAE): xavier on the flat kernel
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        if core.cls_token is not None:
            nn.init.normal_(core.cls_token, std=1e-6)

    @property
    def adapter(self) -> SpectralAdapter | None:
        """The spectral adapter (the protocols fine-tune it); ``None`` without one."""
        return self.spectral_adapter

    @property
    def patch_embed(self) -> nn.Conv2d:
        """The patch projection conv (``vit_core.patch_embed.proj``)."""
        return self.vit_core.patch_embed.proj

    @property
    def blocks(self) -> nn.ModuleList:
        return self.vit_core.blocks

    @property
    def norm(self) -> nn.LayerNorm:
        return self.vit_core.norm

    @property
    def cls_token(self) -> nn.Parameter | None:
        return self.vit_core.cls_token

    def pos_embed(self, height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
        """Position embedding (1, height * width, D) of the patch tokens of a token grid.

        Learned table: its grid part (without the class token's row), resampled bicubically when the
        grid is not the table's; sin-cos: computed for the grid.
        """
        table = self.vit_core.pos_embed
        if table is None:
            return sincos_2d(self.embed_dim, height, width, device=device).unsqueeze(0)
        grid = table[:, int(self.has_class_token) :]
        if (height, width) == (self.grid, self.grid):
            return grid
        square = grid.reshape(1, self.grid, self.grid, self.embed_dim).permute(0, 3, 1, 2)
        resized = F.interpolate(square, size=(height, width), mode="bicubic", align_corners=False)
        return resized.permute(0, 2, 3, 1).reshape(1, height * width, self.embed_dim)

    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """Adapter, patch embedding and patch positions: (B, N, D) patch tokens and the grid size.

        The class token is not among them: :meth:`forward_blocks` prepends it, so that MAE can mask
        the patch tokens first.
        """
        x = self.spectral_adapter(images) if self.spectral_adapter is not None else images
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not divisible by patch {self.patch_size}")
        x = self.vit_core.patch_embed(x)  # (B, D, h, w)
        h, w = x.shape[-2:]
        tokens = x.flatten(2).transpose(1, 2)
        return tokens + self.pos_embed(h, w, device=tokens.device).to(tokens.dtype), h, w

    def with_class_token(self, tokens: torch.Tensor) -> torch.Tensor:
        """Prepend the class token plus its position (B, 1 + N, D); unchanged without one."""
        core = self.vit_core
        if core.cls_token is None:
            return tokens
        cls = core.cls_token
        if core.pos_embed is not None:
            cls = cls + core.pos_embed[:, :1]
        return torch.cat([cls.expand(tokens.shape[0], -1, -1).to(tokens.dtype), tokens], dim=1)

    def forward_blocks(self, tokens: torch.Tensor, keep_cls: bool = False) -> torch.Tensor:
        """Class token, transformer blocks and final norm on (B, N, D) patch tokens (any subset).

        Returns the N normalised patch tokens, or with ``keep_cls`` (and a class token) the
        (B, 1 + N, D) sequence with the class token first, as timm's ``forward_features``.
        """
        x = self.with_class_token(tokens)
        for block in self.vit_core.blocks:
            x = block(x)
        x = self.vit_core.norm(x)
        if keep_cls or not self.has_class_token:
            return x
        return x[:, 1:]

    def forward_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, N, D) normalised patch tokens, N = (H / p) * (W / p), row-major."""
        tokens, _, _ = self.embed(images)
        return self.forward_blocks(tokens)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, D, H / p, W / p) patch-token map (32 x 32 for 128 px)."""
        tokens, h, w = self.embed(images)
        tokens = self.forward_blocks(tokens)
        return tokens.transpose(1, 2).reshape(tokens.shape[0], self.embed_dim, h, w)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, D): the class token after the final norm (or the token mean)."""
        tokens, _, _ = self.embed(images)
        x = self.forward_blocks(tokens, keep_cls=True)
        return x[:, 0] if self.has_class_token else x.mean(dim=1)


def spec_vit(size: str, bands: int = 202, **kw: object) -> SpecViT:
    """Spec. ViT of a named size (``s``, ``b``, ``l``, ``h``, ``g``); ``kw`` overrides any field."""
    return SpecViT(bands=bands, **VIT_SIZES[size.lower()].with_overrides(**kw))  # type: ignore[arg-type]
