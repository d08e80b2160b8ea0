"""Does a training step pay a cold cost the first time it meets a new sequence length (a
GPU question: the toolkit's first epoch on an H100 ran at less than half the speed of the
next ones), and how many distinct lengths does rounding to a multiple of 8 leave?

MiniLM full tuning steps (bf16 autocast, fused AdamW, grad clipping, batch 32) over the
widths a MELD epoch has (4..96), shuffled, in a fresh process: pass 1 meets each width
for the first time, pass 2 repeats it. Then evaluation-style forwards at batch 64.
`exact` uses the widths as they are; `round8` rounds each up to a multiple of 8.
`--attention torch` leaves PyTorch's attention backend order as it is (cuDNN first on
Hopper and Blackwell); `toolkit` runs the steps as the toolkit's encoders do, without
cuDNN attention (`recognize.model.attention`). The line names the backend PyTorch picks
for a masked bf16 call of MiniLM's shape under that setting.

usage: python benchmarks/new_widths.py MODEL_DIR exact|round8 [--attention torch|toolkit]

Prints one JSON line.
"""

import argparse
import json
import random
import time
from contextlib import nullcontext

import torch
from torch.nn import functional as F
from torch.nn.attention import SDPBackend
from transformers import AutoModel

from recognize.model.attention import shape_free_attention

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("model_dir")
parser.add_argument("mode", choices=["exact", "round8"])
parser.add_argument("--attention", choices=["torch", "toolkit"], default="toolkit")
args = parser.parse_args()
model_dir, mode = args.model_dir, args.mode
attention = shape_free_attention if args.attention == "toolkit" else nullcontext
device = "cuda" if torch.cuda.is_available() else "cpu"
start = time.perf_counter()
model = AutoModel.from_pretrained(model_dir, dtype=torch.float32, use_safetensors=True).to(device)
head = torch.nn.Linear(model.config.hidden_size, 7).to(device)
params = [*model.parameters(), *head.parameters()]
optimizer = torch.optim.AdamW(params, lr=1e-5, fused=device == "cuda")
generator = torch.Generator().manual_seed(0)


def sync() -> None:
    """Wait for the GPU, so that timings cover the work."""
    if device == "cuda":
        torch.cuda.synchronize()


def inputs(width: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token ids and a padding mask whose longest row fills `width`."""
    ids = torch.randint(1000, 20000, (batch, width), generator=generator)
    lengths = torch.randint(max(1, width // 2), width + 1, (batch,), generator=generator)
    lengths[0] = width
    mask = (torch.arange(width)[None] < lengths[:, None]).long()
    return ids.to(device), mask.to(device)


def train_step(width: int) -> float:
    """Seconds of one training step (forward, backward, clip, AdamW) at batch 32 and `width`."""
    ids, mask = inputs(width, 32)
    begin = time.perf_counter()
    with attention(), torch.autocast(device, dtype=torch.bfloat16):
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        logits = head(pooled)
    loss = F.cross_entropy(logits.float(), torch.zeros(32, dtype=torch.long, device=device))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    sync()
    return time.perf_counter() - begin


def eval_step(width: int) -> float:
    """Seconds of one evaluation forward at batch 64 and `width`."""
    ids, mask = inputs(width, 64)
    begin = time.perf_counter()
    with attention(), torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16):
        model(input_ids=ids, attention_mask=mask)
    sync()
    return time.perf_counter() - begin


def chosen_backend() -> str:
    """The attention backend PyTorch picks, under this run's setting, for a masked bf16 call
    of MiniLM's shape (batch 32, 12 heads of 32, width 40)."""
    heads, size = model.config.num_attention_heads, model.config.hidden_size // model.config.num_attention_heads
    query = torch.zeros(32, heads, 40, size, device=device, dtype=torch.bfloat16)
    mask = torch.ones(32, 1, 40, 40, device=device, dtype=torch.bool)
    with attention():
        return SDPBackend(torch._fused_sdp_choice(query, query, query, mask)).name


widths = list(range(4, 97, 2))
if mode == "round8":
    widths = [-(-w // 8) * 8 for w in widths]
random.Random(0).shuffle(widths)
first_use = train_step(128)  # CUDA, cuBLAS and allocator start-up, on a width not in the list
setup = time.perf_counter() - start
passes = [[train_step(w) for w in widths] for _ in range(2)]
seen: set[int] = set()
new, repeat = [], []
for w, t in zip(widths, passes[0]):
    (repeat if w in seen else new).append(t)
    seen.add(w)
evals = [[eval_step(w) for w in sorted(set(widths), reverse=True)] for _ in range(2)]
print(json.dumps({
    "benchmark": "new_widths", "mode": mode, "attention": args.attention, "sdpa_backend": chosen_backend(),
    "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
    "distinct_widths": len(set(widths)), "steps_per_pass": len(widths), "setup_s": round(setup, 2),
    "first_step_s": round(first_use, 3), "pass1_s": round(sum(passes[0]), 3), "pass2_s": round(sum(passes[1]), 3),
    "pass1_new_width_ms": round(1000 * sum(new) / max(len(new), 1), 1),
    "pass1_repeat_width_ms": round(1000 * sum(repeat) / max(len(repeat), 1), 1),
    "pass2_step_ms": round(1000 * sum(passes[1]) / len(widths), 1),
    "eval_cold_s": round(sum(evals[0]), 3), "eval_warm_s": round(sum(evals[1]), 3),
}), flush=True)
