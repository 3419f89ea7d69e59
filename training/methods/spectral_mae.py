"""SpectralGPT pre-training: 3D-masked autoencoding with token and spectral reconstruction losses.

Source: SpectralGPT (Hong et al.) sections 2.3-2.6 and 2.8:

- 3D masking: the image is cut into p x p x k tokens (see
  :class:`~training.models.spectralgpt.SpectralGPTEncoder`) and 90 % of them are masked at random
  over the whole (H/p, W/p, D/k) token grid, so a pixel column can be partly visible (some spectral
  groups seen, others hidden).
- Multi-target reconstruction, eq. (3): ``L = L_token + lambda * L_spectral``. ``L_token`` is the MSE
  between reconstructed and original tokens (we average it over the masked tokens, as MAE does);
  ``L_spectral`` is the MSE between the "spectral tokens" -- the concatenation
  ``[x_{r,c,1} ... x_{r,c,D/k}]`` of all groups at one spatial position (r, c) -- and their
  reconstruction, averaged over all n = (H/p)(W/p) positions as the equation writes it.
- Normalised targets beat raw ones (ablation, table 5(d)).

How the two targets differ here (the paper does not spell out the normalisation, this is our
reading): the token target is each token standardised on its own (MAE's ``norm_pix_loss``), which
removes the level and contrast of every spectral group; the spectral target standardises the whole
pixel column of G tokens together, which keeps how the groups relate to each other -- the spectral
shape across the spectrum, the "spectrally sequential" information the loss is meant for. The
decoder trunk is shared and each target has its own linear prediction layer.

Progressive training (section 2.6: pre-train on one dataset, then continue on another with other
image sizes) needs nothing special here: the encoder's spatial position table is interpolated for
other sizes, and the caller simply continues training the same module on the next dataset.

Defaults: decoder width 512 (MAE) and depth 4, SpectralGPT's best decoder depth (table 5(e): 2 ->
84.59, 4 -> 85.61, 8 -> 85.38 mAP); lambda = 1 (the paper gives no value).
"""

from __future__ import annotations

import torch
from torch import nn

from training.methods.mae import MAEDecoder, normalise_last, random_masking
from training.models.spectralgpt import SpectralGPTEncoder
from training.models.vit import sincos_2d


class SpectralMAE(nn.Module):
    """SpectralGPT's masked autoencoder; ``forward(images)`` returns ``L_token + lambda * L_spectral``.

    Args:
        encoder: the :class:`SpectralGPTEncoder` to pre-train (``self.encoder``).
        mask_ratio: share of 3D tokens hidden from the encoder (0.9).
        decoder_dim, decoder_depth, decoder_heads: decoder size.
        spectral_weight: lambda of eq. (3).
        spectral_masked_only: average the spectral loss over positions with at least one masked group
            only, instead of over all positions (eq. (3) as written).
    """

    def __init__(
        self,
        encoder: SpectralGPTEncoder,
        mask_ratio: float = 0.9,
        decoder_dim: int = 512,
        decoder_depth: int = 4,
        decoder_heads: int = 16,
        spectral_weight: float = 1.0,
        spectral_masked_only: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.spectral_weight = spectral_weight
        self.spectral_masked_only = spectral_masked_only
        self.decoder = MAEDecoder(
            encoder.embed_dim,
            decoder_dim,
            decoder_depth,
            decoder_heads,
            out_dim=encoder.token_numel,
            extra_outputs=1,
        )
        # Decoder positions: learned per spectral group (as the encoder's) + fixed sin-cos in space.
        self.decoder_pos_spectral = nn.Parameter(torch.zeros(1, encoder.num_groups, 1, decoder_dim))
        nn.init.trunc_normal_(self.decoder_pos_spectral, std=0.02)

    def decoder_pos(self, groups: int, h: int, w: int, device: torch.device) -> torch.Tensor:
        """(1, groups * h * w, decoder_dim) in the encoder's (group, row, column) token order."""
        spatial = sincos_2d(self.decoder.decoder_dim, h, w, device=device).unsqueeze(0).unsqueeze(0)
        pos = self.decoder_pos_spectral[:, :groups] + spatial  # (1, G, h*w, D)
        return pos.reshape(1, groups * h * w, -1)

    def forward_parts(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Both losses, the total, and the token mask (B, G, h, w) for inspection."""
        tokens, (g, h, w) = self.encoder.embed(images)
        visible, mask, restore = random_masking(tokens, self.mask_ratio, generator)
        latent = self.encoder.forward_blocks(visible)
        feats = self.decoder.trunk(latent, restore, self.decoder_pos(g, h, w, images.device))
        b = images.shape[0]
        pred_token = self.decoder.preds[0](feats).reshape(b, g, h, w, -1)
        pred_spectral = self.decoder.preds[1](feats).reshape(b, g, h, w, -1)
        target = self.encoder.patchify(images)  # (B, G, h, w, k*p*p)
        mask = mask.reshape(b, g, h, w)

        token_target = normalise_last(target)
        per_token = (pred_token - token_target).pow(2).mean(dim=-1)
        token_loss = (per_token * mask).sum() / mask.sum().clamp_min(1.0)

        # Spectral tokens: all G groups of one spatial position, as one vector (B, h, w, G*k*p*p).
        column = target.permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
        column_pred = pred_spectral.permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
        per_column = (column_pred - normalise_last(column)).pow(2).mean(dim=-1)
        if self.spectral_masked_only:
            weight = (mask.amax(dim=1) > 0).to(per_column.dtype)
            spectral_loss = (per_column * weight).sum() / weight.sum().clamp_min(1.0)
        else:
            spectral_loss = per_column.mean()
        loss = token_loss + self.spectral_weight * spectral_loss
        return {"loss": loss, "token_loss": token_loss, "spectral_loss": spectral_loss, "mask": mask}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> scalar ``L_token + lambda * L_spectral``."""
        return self.forward_parts(images)["loss"]

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """Same as ``forward``."""
        return self.forward(images)
