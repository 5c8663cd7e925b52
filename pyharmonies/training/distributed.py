"""DDP set-up from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

Without those variables this is a single process and every call is a no-op,
so the loop has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from pyharmonies.errors import ParameterError


@dataclass
class Distributed:
    """This process's place in a (possibly one-process) job."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    enabled: bool = False

    @classmethod
    def none(cls) -> Distributed:
        return cls()

    @classmethod
    def from_env(cls, device: str = "auto") -> Distributed:
        """Join the process group torchrun describes (gloo on CPU, NCCL on CUDA)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        if use_cuda:
            if torch.cuda.device_count() <= local:
                raise ParameterError(f"LOCAL_RANK {local} has no CUDA device ({torch.cuda.device_count()} visible)")
            torch.cuda.set_device(local)
            dev = torch.device("cuda", local)
        else:
            dev = torch.device("cpu")
        if not torch_dist.is_initialized():
            torch_dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world)
        return cls(rank=rank, world_size=world, device=dev, enabled=True)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch_dist.barrier()

    def close(self) -> None:
        if self.enabled and torch_dist.is_initialized():
            torch_dist.destroy_process_group()
