"""Training throughput: images per second of the loader alone, the model alone and both together,
per model and method, so the slower side is named.

    .venv/bin/python benchmarks/train.py [--data DIR] [--models spec_resnet50,spec_vit_s]
        [--methods moco,dino,mae,spectral_mae] [--batch 8] [--steps 3] [--image-px 128]
        [--workers 2] [--device auto]

Why: the loader must never be what a GPU waits for. The loader reads patches from the store
through ``PatchReader`` in worker processes (one pread + one Blosc decode per patch) and hands
over the stored int16 pixels, normalised on the device as the training loop does; the model
step is the method's forward, backward and optimiser step on random tensors of the same shape on
the device; "both" is the real training step fed by the loader.

``--data`` is a data root with a release (``make demo`` makes one; without it, a small archive is
simulated and taken through the pipeline first, which takes a few minutes). On a CPU the full
models at 128 px take seconds per image, so the defaults are small steps; on a GPU (the device
tool) pass ``--batch 64 --steps 20``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage_schemas.paths import DataLayout
from storage_schemas.release import resolve_release
from training.checkpoints import seed_epoch
from training.data import PretrainDataset, pretrain_loader, pretrain_sampler, release_store
from training.distributed import place
from training.models.registry import build_encoder
from training.recipes import after_step, before_step, recipe

SPECTRALGPT_FOR = {"spectral_mae": "spectralgpt_s"}
"""SpectralGPT's MAE needs its own 3D-token encoder; the other methods take the named model."""


def loader_rate(dataset: PretrainDataset, batch: int, workers: int, batches: int) -> float:
    """Images/s after the first batch (worker start-up is not what a long run waits on)."""
    loader = pretrain_loader(dataset, batch, pretrain_sampler(dataset, 0), workers)
    started, images = 0.0, 0
    for i, item in enumerate(loader):
        if i == 0:
            started = time.perf_counter()
            continue
        images += len(item["location"])
        if i >= batches:
            break
    return images / (time.perf_counter() - started)


def _cycle(loader):
    """The loader's batches again and again (a small release has fewer batches than steps)."""
    while True:
        yield from loader


def model_rate(model: str, method: str, stats, batch: int, px: int, steps: int, device, loader=None) -> float:
    """Images/s of training steps: on random tensors, or on the loader's batches when given."""
    r = recipe(method)
    bands = len(stats.mean)
    encoder = build_encoder(SPECTRALGPT_FOR.get(method, model), bands)
    trained = r.build(encoder, bands).to(device)
    views = r.views(px, {})
    optimizer = torch.optim.AdamW([p for p in trained.parameters() if p.requires_grad], lr=1e-4)
    generator = seed_epoch(0, 0)

    def fake() -> dict:
        image = torch.randn(batch, bands, 128, 128)
        return {"view1": image, "view2": image.clone(), "image": image, "location": ["x"] * batch}

    batches = _cycle(loader) if loader is not None else None
    times = []
    for step in range(steps + 1):  # the first step warms up (allocations, cudnn autotuning)
        item = stats.normalise_items(next(batches), device) if batches is not None else fake()
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        loss = r.loss(trained, views, item, generator, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        before_step(trained, r, epoch=1)  # past DINO's first epoch: every parameter steps
        optimizer.step()
        after_step(trained, r, step, steps + 1)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - started)
    return batch / statistics.median(times)


def _release(data: Path | None) -> tuple[Path, Path]:
    root = data or Path("data")
    release = resolve_release(DataLayout.at(root).releases, "latest")
    return release, release_store(release, root.absolute())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--models", default="spec_resnet50,spec_vit_s")
    parser.add_argument("--methods", default="moco,dino,mae,spectral_mae")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--image-px", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = place(args.device).device
    release, store = _release(args.data)
    pairs = PretrainDataset(release, store, pairs=True, raw=True)
    singles = PretrainDataset(release, store, pairs=False, raw=True)
    bands = len(pairs.stats.mean)
    batches = max(3, min(len(pairs) // args.batch, 20))
    loader_ips = loader_rate(pairs, args.batch, args.workers, batches)
    print(
        f"device {device}; release {release.name}, {len(pairs)} locations, {bands} bands; batch {args.batch}"
    )
    print(f"loader alone: {loader_ips:.1f} images/s ({args.workers} workers)")
    print(f"{'model':<16} {'method':<13} {'model alone':>12} {'both':>8} {'slower':>8}")
    result = {"device": device.type, "loader_ips": round(loader_ips, 1)}
    for model in args.models.split(","):
        for method in args.methods.split(","):
            if method == "spectral_mae" and model != args.models.split(",")[0]:
                continue  # one SpectralGPT row: its encoder does not depend on --models
            if method == "mae" and not model.startswith("spec_vit"):
                continue  # MAE masks ViT tokens
            dataset = pairs if recipe(method).pairs else singles
            loader = pretrain_loader(dataset, args.batch, pretrain_sampler(dataset, 1), args.workers)
            alone = model_rate(model, method, pairs.stats, args.batch, args.image_px, args.steps, device)
            both = model_rate(
                model, method, pairs.stats, args.batch, args.image_px, args.steps, device, loader
            )
            name = SPECTRALGPT_FOR.get(method, model)
            slower = "loader" if loader_ips < alone else "model"
            print(f"{name:<16} {method:<13} {alone:>12.2f} {both:>8.2f} {slower:>8}")
            result[f"{name}_{method}_ips"] = round(both, 2)
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
