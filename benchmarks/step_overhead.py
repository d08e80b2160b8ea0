"""What the toolkit's training loop adds to a bare PyTorch training step.

One process, one model setting, MELD's training split in the toolkit's length-grouped
batches of 32:
  1. the toolkit: `train` for two epochs; the second epoch's training seconds (from
     history.csv), after the first has met every batch width;
  2. a bare loop over the same batches, collated beforehand and already on the device:
     forward under the same autocast, cross-entropy, backward, gradient clipping, the
     same AdamW (fused on a GPU) and schedule; two passes, the second timed.
The difference per step is everything the toolkit adds: the DataLoader and collation,
the host-to-device copy, accelerate's wrappers, the objective module and the loss sum.

`--shrink` replaces the model's weights by a random model of the same shape (layers,
heads, vocabulary, tokenizer) but 2 values per head: the arithmetic becomes negligible, so
the seconds are host overhead alone (what bounds a small model on a GPU).

usage: python benchmarks/step_overhead.py MELD_DIR MODEL_DIR [--shrink] [--output FILE.jsonl]

Prints one JSON line.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
from accelerate.utils import send_to_device
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel, get_linear_schedule_with_warmup

from recognize import ExperimentConfig, train
from recognize.builder import build_model, make_split, train_loader
from recognize.engine import make_accelerator, make_optimizer

from jsonl import emit, epoch_seconds, machine, progress_to_stderr

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "merges.txt",
                   "vocab.json", "sentencepiece.bpe.model", "spm.model")


def shrunk_copy(model_dir: Path, folder: Path) -> Path:
    """A random model of `model_dir`'s architecture with 2 values per attention head, and its tokenizer."""
    config = AutoConfig.from_pretrained(model_dir)
    config.hidden_size = 2 * config.num_attention_heads
    config.intermediate_size = 2 * config.hidden_size
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        if (model_dir / name).is_file():
            shutil.copy(model_dir / name, folder / name)
    return folder


def toolkit_epoch_seconds(config: ExperimentConfig) -> float:
    """Training seconds of the second of two toolkit epochs."""
    with progress_to_stderr():
        return epoch_seconds(train(config, overwrite=True))[1]


def bare_pass_seconds(config: ExperimentConfig) -> tuple[float, int]:
    """Seconds of the second of two bare passes over the toolkit's batches, and its steps."""
    accelerator = make_accelerator(config.precision)
    built = build_model(config)
    model = built.model.to(accelerator.device).train()
    batches = [send_to_device(batch, accelerator.device)
               for batch in train_loader(config, built, make_split(config, built, "train", training=True).dataset)]
    optimizer = make_optimizer(model, config)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, 2 * len(batches))
    seconds = 0.0
    for _ in range(2):
        start = time.perf_counter()
        for batch in batches:
            with accelerator.autocast():
                logits = model(batch)
            loss = F.cross_entropy(logits.float(), batch["labels"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return seconds, len(batches)


def main() -> None:
    """Parse the arguments, time the toolkit's second epoch and the bare loop on its batches, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("model", type=Path)
    parser.add_argument("--shrink", action="store_true", help="same shape, 2 values per head: host overhead alone")
    parser.add_argument("--output", help="also append the JSON line to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        model = shrunk_copy(args.model, Path(workdir) / "shrunk") if args.shrink else args.model
        config = ExperimentConfig(data=args.data, text_model=str(model), task="emotion", mode="full", epochs=2,
                                  batch_size=32, lr=5e-5, seed=42, log="none", output_dir=str(Path(workdir) / "runs"))
        toolkit = toolkit_epoch_seconds(config)
        bare, steps = bare_pass_seconds(config)
    emit({"benchmark": "step_overhead", "model": args.model.name, "shrunk": args.shrink, "steps": steps,
          "toolkit_epoch_s": round(toolkit, 3), "bare_pass_s": round(bare, 3),
          "toolkit_step_ms": round(1000 * toolkit / steps, 2), "bare_step_ms": round(1000 * bare / steps, 2),
          "added_ms_per_step": round(1000 * (toolkit - bare) / steps, 2), "machine": machine()}, args.output)


if __name__ == "__main__":
    main()
