"""Which fused attention kernels the backbones may use.

Recent PyTorch releases try cuDNN's attention first on Hopper and Blackwell GPUs
(sm90, sm100) when built with a recent cuDNN. cuDNN builds an execution plan for every
new (batch size, sequence length) it meets, at a cost of hundreds of milliseconds, and
MELD's batches come in dozens of widths. The encoders therefore run their backbones with
cuDNN attention left out; FlashAttention, memory-efficient attention and the math kernel
keep PyTorch's order among themselves and need no plan per shape. On a CPU nothing
changes. `benchmarks/new_widths.py --attention` compares the two on a GPU (on an H100:
287 ms for a MiniLM training step at a new width with cuDNN, 34 ms without; 24 ms for a
repeated width either way).
"""

from contextlib import AbstractContextManager

from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPE_FREE_BACKENDS: tuple[SDPBackend, ...] = tuple(
    backend for backend in SDPBackend.__members__.values()
    if backend not in (SDPBackend.CUDNN_ATTENTION, SDPBackend.ERROR)
)
"""Every attention backend except cuDNN's (and the `ERROR` placeholder)."""


def shape_free_attention() -> AbstractContextManager:
    """A context in which `scaled_dot_product_attention` never picks cuDNN attention, the
    one backend that pays a plan build per new input shape; restored on exit."""
    return sdpa_kernel(list(SHAPE_FREE_BACKENDS))
