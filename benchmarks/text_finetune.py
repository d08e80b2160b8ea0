"""Text fine-tuning on real MELD: the toolkit's `train` against a plain Hugging Face
`Trainer` fine-tune of the same model, on the same data and settings, in the same run.

Prints one JSON line per runner (dev/test accuracy and weighted-F1, seconds, samples/s)
and one comparing them. Seconds are end to end (model loading, tokenisation, training,
dev evaluation every epoch, best-epoch selection, test evaluation; the Trainer's best
dev scores are read back after the clock stops, as the toolkit keeps them from its loop);
samples/s is training samples x epochs / seconds. `--trainer-setup tuned` gives the
Trainer what a careful user would switch on: length-grouped batches, widths padded to a
multiple of 8 on a GPU (as the toolkit pads), and no per-step NaN check of the loss. `loop_seconds` is the training loop alone (with its
dev evaluations and saves), and the toolkit's line has each epoch's training seconds.

usage: python benchmarks/text_finetune.py MELD_DIR MODEL_DIR [--task emotion] [--epochs 4]
       [--batch-size 32] [--lr 5e-5] [--context 0] [--runners toolkit,trainer] [--isolate] [--compile]
       [--trainer-attention torch|toolkit] [--trainer-setup plain|tuned] [--output FILE.jsonl]
"""

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from recognize import ExperimentConfig, train
from recognize.checkpoint import METRICS, read_json
from recognize.config import backbone_name
from recognize.dataset.meld import label_ids, load_split
from recognize.labels import LABELS
from recognize.metrics import classification_metrics
from recognize.model.attention import shape_free_attention

from jsonl import emit, epoch_seconds, machine, progress_to_stderr


def run_toolkit(args: argparse.Namespace, workdir: Path) -> dict:
    """Train and test with `recognize.train`; return its scores and timing."""
    config = ExperimentConfig(data=args.data, text_model=args.model, task=args.task, mode=args.mode, epochs=args.epochs,
                              batch_size=args.batch_size, lr=args.lr, context=args.context, seed=args.seed,
                              compile=args.compile, output_dir=str(workdir / "toolkit"))
    start = time.perf_counter()
    with progress_to_stderr():
        folder = train(config)
    seconds = time.perf_counter() - start
    metrics = read_json(folder / METRICS)
    epochs = [round(s, 2) for s in epoch_seconds(folder)]
    return {**_result("toolkit", args, metrics["dev"], metrics["test"], seconds, metrics["train_samples"] * metrics["epochs_run"],
                      metrics["train_seconds"]), "epoch_train_seconds": epochs}


def run_trainer(args: argparse.Namespace, workdir: Path) -> dict:
    """Train and test with a plain `transformers.Trainer` (AutoModelForSequenceClassification,
    DataCollatorWithPadding, best epoch by dev weighted-F1); return its scores and timing."""
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments, set_seed)

    labels = list(LABELS[args.task])
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    set_seed(args.seed)  # the new classification head's initialisation, as the toolkit seeds its own
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=len(labels), dtype=torch.float32,
                                                               use_safetensors=True)

    def encode(split: str) -> list[dict]:
        rows = load_split(args.data, split)
        encodings = tokenizer(rows["text"].tolist(), truncation=True, max_length=128)
        return [{**{k: encodings[k][i] for k in encodings}, "labels": int(y)} for i, y in enumerate(label_ids(rows, args.task))]

    train_set, dev_set, test_set = encode("train"), encode("dev"), encode("test")

    def scores(prediction) -> dict:
        return {"weighted_f1": classification_metrics(prediction.label_ids, prediction.predictions.argmax(-1), labels)["weighted_f1"]}

    cuda = torch.cuda.is_available()
    tuned = args.trainer_setup == "tuned"
    training_args = TrainingArguments(**_tuned_arguments(TrainingArguments) if tuned else {},
        output_dir=str(workdir / "trainer"), per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size * 2, learning_rate=args.lr, num_train_epochs=args.epochs,
        warmup_steps=0.1, weight_decay=0.01, eval_strategy="epoch", save_strategy="epoch", save_total_limit=1,
        load_best_model_at_end=True, metric_for_best_model="weighted_f1", logging_strategy="epoch", report_to="none",
        seed=args.seed, disable_tqdm=True, use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported(),
    )
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if tuned and cuda else None)
    trainer = Trainer(model=model, args=training_args, train_dataset=train_set, eval_dataset=dev_set,
                      data_collator=collator, compute_metrics=scores)
    with shape_free_attention() if args.trainer_attention == "toolkit" else nullcontext(), progress_to_stderr():
        loop_seconds = trainer.train().metrics["train_runtime"]
        test = trainer.predict(test_set)
        seconds = time.perf_counter() - start
        dev = trainer.predict(dev_set)  # the best epoch's dev scores, which the toolkit keeps from its loop: not timed
    dev_metrics = classification_metrics(dev.label_ids, dev.predictions.argmax(-1), labels)
    test_metrics = classification_metrics(test.label_ids, test.predictions.argmax(-1), labels)
    return _result("trainer", args, dev_metrics, test_metrics, seconds, len(train_set) * args.epochs, loop_seconds)


def _tuned_arguments(arguments_class: type) -> dict:
    """TrainingArguments a careful Trainer user sets for speed: length-grouped training
    batches (`train_sampling_strategy` since transformers 5.2x, `group_by_length` before)
    and no per-step NaN/inf check of the loss (a host-device sync each step)."""
    names = {field.name for field in dataclasses.fields(arguments_class)}
    grouping = {"train_sampling_strategy": "group_by_length"} if "train_sampling_strategy" in names else {"group_by_length": True}
    return {**grouping, "logging_nan_inf_filter": False}


def _result(runner: str, args: argparse.Namespace, dev: dict, test: dict, seconds: float, samples: int,
            loop_seconds: float) -> dict:
    """One JSON-ready result line; `loop_seconds`: the training loop alone, its epochs' dev
    evaluations and saves included (no model loading, tokenising or test scoring)."""
    return {
        "benchmark": "text_finetune", "runner": runner, "model": backbone_name(args.model), "task": args.task,
        "mode": args.mode if runner == "toolkit" else "full", "compile": args.compile and runner == "toolkit",
        "attention": "toolkit" if runner == "toolkit" else args.trainer_attention,
        **({"trainer_setup": args.trainer_setup} if runner == "trainer" else {}),
        "context": args.context, "epochs": args.epochs,
        "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
        "dev_accuracy": round(100 * dev["accuracy"], 2), "dev_weighted_f1": round(100 * dev["weighted_f1"], 2),
        "test_accuracy": round(100 * test["accuracy"], 2), "test_weighted_f1": round(100 * test["weighted_f1"], 2),
        "seconds": round(seconds, 1), "loop_seconds": round(loop_seconds, 1), "samples_per_second": round(samples / seconds, 1), "machine": machine(),
    }


def run_isolated(runner: str, workdir: Path) -> dict:
    """This script with the same arguments, for `runner` alone, in a new process; its result line."""
    output = workdir / f"{runner}.jsonl"
    arguments = [a for a in sys.argv[1:] if a != "--isolate"]
    for flag in ("--runners", "--output"):
        if flag in arguments:
            del arguments[arguments.index(flag):arguments.index(flag) + 2]
    subprocess.run([sys.executable, __file__, *arguments, "--runners", runner, "--output", str(output)], check=True,
                   stdout=sys.stderr)  # its line comes back through `output`, marked isolated, and is printed once
    return {**json.loads(output.read_text().splitlines()[-1]), "isolated": True}


def main() -> None:
    """Parse the arguments, run the toolkit and the Trainer (in this process or each in its own), print the JSON lines and the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("model")
    parser.add_argument("--task", default="emotion", choices=list(LABELS))
    parser.add_argument("--mode", default="full", choices=["full", "lora", "frozen"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--context", type=int, default=0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runners", default="toolkit,trainer")
    parser.add_argument("--compile", action="store_true", help="the toolkit's run compiles its backbone (--compile)")
    parser.add_argument("--trainer-attention", choices=["torch", "toolkit"], default="torch",
                        help="the Trainer's attention backends: PyTorch's order (a plain Trainer) or the toolkit's, without cuDNN")
    parser.add_argument("--trainer-setup", choices=["plain", "tuned"], default="plain",
                        help="the Trainer as given (plain) or with length grouping, padding to 8 on a GPU and no per-step NaN check")
    parser.add_argument("--output", help="also append the JSON lines to this file")
    parser.add_argument("--isolate", action="store_true",
                        help="run each runner in a process of its own (each pays its own CUDA start-up)")
    args = parser.parse_args()
    runners = {"toolkit": run_toolkit, "trainer": run_trainer}
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.runners.split(","):
            results.append(run_isolated(name, Path(workdir)) if args.isolate else runners[name](args, Path(workdir)))
            emit(results[-1], args.output)
    if len(results) == 2:
        toolkit, trainer = sorted(results, key=lambda r: r["runner"] != "toolkit")
        emit({"benchmark": "text_finetune", "runner": "comparison", "task": args.task, "machine": machine(),
              "speedup": round(toolkit["samples_per_second"] / trainer["samples_per_second"], 2),
              "test_weighted_f1_difference": round(toolkit["test_weighted_f1"] - trainer["test_weighted_f1"], 2)}, args.output)


if __name__ == "__main__":
    main()
