"""One process or many: ``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK, and then each process
takes one GPU (NCCL) or, without GPUs, joins a Gloo group on the CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Placement:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def place(device: str = "auto") -> Placement:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    target = torch.device(f"cuda:{local}" if device == "cuda" else device)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo")
    return Placement(rank, world, target)


def mean_across(value: float, placement: Placement) -> float:
    if placement.world == 1:
        return value
    tensor = torch.tensor([value], device=placement.device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / placement.world


def close() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
