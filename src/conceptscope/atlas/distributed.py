"""Sharded builds with torch.distributed: joining the group torchrun sets up, and the collectives an atlas needs.

Without an initialised process group everything here degrades to the single-process case, so the build code has one
path. Collectives run on the backend's device: CUDA for NCCL, CPU for gloo.
"""
import os

import torch
import torch.distributed as dist

from .state import AtlasState


def rank_and_size():
    """``(rank, world size)`` of this process; ``(0, 1)`` when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env():
    """Join the process group described by torchrun's environment (NCCL with one GPU per process where CUDA is
    available, gloo on CPU) and return the device this process should compute on."""
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")


def _device():
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast(values):
    """Rank 0's list of ints, on every rank."""
    if rank_and_size()[1] == 1:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.int64, device=_device())
    dist.broadcast(tensor, 0)
    return tensor.tolist()


def gather(state):
    """The :class:`AtlasState` of every rank, in rank order (``[state]`` when not distributed)."""
    size = rank_and_size()[1]
    if size == 1:
        return [state]
    parts = [{} for _ in range(size)]
    for key, tensor in state.tensors.items():
        received = [torch.empty(tensor.shape, dtype=tensor.dtype, device=_device()) for _ in range(size)]
        dist.all_gather(received, tensor.to(_device()))
        for part, value in zip(parts, received):
            part[key] = value.to(tensor.device)
    return [AtlasState(part, state.channels, state.modes, state.k) for part in parts]
