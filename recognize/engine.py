"""The training loop, on accelerate. Read it top to bottom: `fit` trains for the configured
epochs, evaluates dev after each, keeps the best epoch's weights by dev weighted-F1, stops
early when asked, and saves a resumable state after every epoch. With `--ema-decay` the
weights evaluated and kept are a moving average of the trained ones (`WeightAverage`).

Randomness is seeded per epoch (batch order from (seed, epoch), dropout from seed + epoch),
so a run resumed after epoch k continues exactly as an uninterrupted one would.
"""

import math
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager, Optional

import numpy as np
import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration, set_seed
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup

from recognize import checkpoint as ckpt
from recognize.config import ExperimentConfig
from recognize.epoch_log import EpochLog
from recognize.errors import RecognizeError, first_line
from recognize.main_process import on_main_process
from recognize.metrics import classification_metrics
from recognize.model.layers import layer_scales
from recognize.model.modes import checkpoint_state, running_statistics
from recognize.objective import LabelObjective
from recognize.weight_average import WeightAverage

LOG_EVERY_STEPS = 20
"""How often the progress bar's loss is read back from the device (each read syncs)."""


@dataclass
class FitResult:
    """What `fit` reports: the best epoch (1-based), its dev metrics, every epoch's row, and
    per split ("train", "dev") and modality which rows had their input in every batch they
    were in (False: a clip missing, or failing to decode when read, in any epoch)."""

    best_epoch: int
    best_dev: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    present: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def resolved_precision(precision: str) -> str:
    """`--precision` on this machine: "auto" is bf16 on a GPU that supports it, fp16 on
    other GPUs, "no" (full precision) on CPU; any other value stays as it is."""
    if precision != "auto":
        return precision
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def make_accelerator(precision: str, grad_accum: int = 1) -> Accelerator:
    """An Accelerator for `precision` (see `resolved_precision`) accumulating gradients
    over `grad_accum` batches. accelerate keeps one precision per process; one process may
    need several (`eval --compare`, a teacher trained at another precision than its
    student), so a different one replaces the earlier: every Accelerator shares that state,
    so an earlier one must not be used again after a later one of another precision."""
    precision = resolved_precision(precision)
    if AcceleratorState._shared_state and AcceleratorState().mixed_precision != precision:
        AcceleratorState._reset_state()  # the process's distributed state (PartialState) stays
    cuda = torch.cuda.is_available()
    return Accelerator(mixed_precision=precision, gradient_accumulation_steps=grad_accum, cpu=not cuda,
                       dataloader_config=DataLoaderConfiguration(non_blocking=cuda))  # pinned batches copy asynchronously


def process_state() -> PartialState:
    """This process's place in a (possibly multi-process) run; several CPU processes
    (`torchrun --nproc_per_node N` on a machine without GPUs) form a gloo group."""
    return PartialState(cpu=not torch.cuda.is_available())


def make_optimizer(model: torch.nn.Module, config: ExperimentConfig,
                   objective: Optional[torch.nn.Module] = None) -> torch.optim.AdamW:
    """AdamW over the trainable parameters: the encoders' at `learning_rate` (times their
    layer's `layer_scales` factor with `--layer-decay`), the fusion's and head's (and the
    `objective`'s own, if any) at `head_learning_rate`; no weight decay on biases and norm
    weights; the fused kernel on GPU."""
    groups: dict[tuple[bool, float, bool], list[torch.nn.Parameter]] = {}
    named = [(name, param) for name, param in (*model.named_parameters(),
             *(objective.named_parameters(prefix="objective") if objective is not None else ())) if param.requires_grad]
    encoder_names = [name for name, _ in named if name.startswith("encoders.")]
    scales = layer_scales(encoder_names, config.layer_decay) if config.layer_decay != 1.0 else {}
    for name, param in named:
        encoder = name.startswith("encoders.")
        groups.setdefault((encoder, scales.get(name, 1.0), param.ndim >= 2), []).append(param)
    params = [p for group in groups.values() for p in group]
    fused = torch.cuda.is_available() and all(p.is_cuda for p in params)
    return torch.optim.AdamW(
        [{"params": group, "lr": config.learning_rate * scale if encoder else config.head_learning_rate,
          "weight_decay": config.weight_decay if decays else 0.0}
         for (encoder, scale, decays), group in sorted(groups.items(), reverse=True)],  # encoders' top layer first: history's lr
        lr=config.learning_rate, fused=fused or None)


def class_weights(labels: np.ndarray, num_labels: int) -> torch.Tensor:
    """Inverse-frequency class weights, n / (K * count_k); classes absent from `labels` get 0."""
    counts = np.bincount(labels, minlength=num_labels).astype(np.float64)
    weights = np.divide(len(labels), num_labels * counts, out=np.zeros_like(counts), where=counts > 0)
    return torch.tensor(weights, dtype=torch.float32)


def fit(
    model: torch.nn.Module,
    train_data: DataLoader,
    dev_data: DataLoader,
    labels: list[str],
    config: ExperimentConfig,
    run_dir: Path,
    objective: Optional[torch.nn.Module] = None,
    resume: bool = False,
) -> FitResult:
    """Train `model` to minimise `objective` (default: cross-entropy against the labels) as
    `config` says; its best epoch's weights end in `run_dir/model.safetensors` and in `model`
    itself. With `resume`, continue from `run_dir/state/`."""
    accelerator = make_accelerator(config.precision, config.grad_accum)
    model.to(accelerator.device)  # before the optimiser: the fused AdamW kernel needs the parameters on the GPU
    objective = (objective if objective is not None else LabelObjective()).to(accelerator.device)
    optimizer = make_optimizer(model, config, objective)
    # each process takes every Nth batch (the last round padded); accelerate steps the scheduler N times per step
    batches_per_process = math.ceil(len(train_data) / accelerator.num_processes)
    steps_per_epoch = math.ceil(batches_per_process / config.grad_accum) * accelerator.num_processes
    total_steps = steps_per_epoch * config.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup * total_steps), total_steps)
    model, optimizer, train_data, dev_data, scheduler = accelerator.prepare(model, optimizer, train_data, dev_data, scheduler)
    if any(p.requires_grad for p in objective.parameters()):
        objective = accelerator.prepare(objective)  # its own parameters' gradients are averaged across processes too

    average = WeightAverage(accelerator.unwrap_model(model), config.ema_decay) if config.ema_decay else None
    state = TrainingState()
    if resume:
        state = load_state(run_dir, accelerator.unwrap_model(model), optimizer, scheduler, accelerator.unwrap_model(objective),
                           average)
        accelerator.print(f"resuming after epoch {state.epoch} of {config.epochs}")

    log_epoch = EpochLog(config.log if accelerator.is_main_process else "none", run_dir)
    started = time.perf_counter() - state.train_seconds
    for epoch in range(state.epoch, config.epochs):
        if config.patience and state.bad_epochs >= config.patience:
            break
        set_seed(config.seed + epoch)  # torch, numpy (Wav2Vec2's time masks and layer drop) and random, per epoch
        set_epoch(train_data, epoch)
        epoch_start = time.perf_counter()
        train_loss, samples, absent = _train_epoch(model, train_data, optimizer, scheduler, accelerator, config, objective,
                                                   epoch, average)
        seconds = time.perf_counter() - epoch_start
        check_finite(model, epoch + 1, train_loss)  # before this epoch's weights could be saved as the best
        with evaluated_weights(average):
            dev = predict(model, dev_data, accelerator)
        dev_metrics = classification_metrics(dev.labels, dev.logits.argmax(-1), labels)
        state.note_absent("train", absent)
        state.note_absent("dev", {m: ~present for m, present in dev.present.items()})
        row = {
            "epoch": epoch + 1,
            "train_loss": round(train_loss, 6),
            "dev_accuracy": round(dev_metrics["accuracy"], 6),
            "dev_weighted_f1": round(dev_metrics["weighted_f1"], 6),
            "dev_macro_f1": round(dev_metrics["macro_f1"], 6),
            "lr": scheduler.get_last_lr()[0],
            "seconds": round(seconds, 3),
            "samples_per_second": round(samples / seconds, 2),
        }
        state.history.append(row)
        log_epoch(row)
        improved = dev_metrics["weighted_f1"] > state.best_f1
        if improved:
            state.best_f1, state.best_epoch, state.best_dev, state.bad_epochs = dev_metrics["weighted_f1"], epoch + 1, dev_metrics, 0
        else:
            state.bad_epochs += 1
        state.epoch = epoch + 1
        state.train_seconds = time.perf_counter() - started

        def write_epoch() -> None:
            with evaluated_weights(average):  # the checkpoint keeps the weights dev scored
                if improved:
                    ckpt.write_weights(run_dir / ckpt.WEIGHTS, checkpoint_state(accelerator.unwrap_model(model)))
                if config.keep_last:  # every epoch, so that a resumed run's is always its latest epoch's
                    write_last_weights(run_dir, improved, accelerator.unwrap_model(model))
                else:  # resumed without --keep-last: an earlier epoch's must not pass for the last
                    (run_dir / ckpt.LAST_WEIGHTS).unlink(missing_ok=True)
            ckpt.write_rows(run_dir / ckpt.HISTORY, state.history)
            if state.epoch < config.epochs:  # after the last epoch the state would be removed at once, below
                save_state(run_dir, state, accelerator.unwrap_model(model), optimizer, scheduler, accelerator.unwrap_model(objective),
                           average)
        on_main_process(accelerator, write_epoch)  # once an epoch, not a step: a failed write stops every process
        accelerator.print(
            f"epoch {epoch + 1}/{config.epochs}: loss {train_loss:.4f}, dev acc {dev_metrics['accuracy']:.2%}, "
            f"dev wF1 {dev_metrics['weighted_f1']:.2%}{' (best)' if improved else ''}, {row['samples_per_second']:.0f} samples/s",
            flush=True,
        )

    log_epoch.close()
    best = ckpt.read_weights(run_dir / ckpt.WEIGHTS)
    accelerator.unwrap_model(model).load_state_dict(best, strict=False)
    on_main_process(accelerator, lambda: mark_trained(run_dir, state))
    modalities = list(accelerator.unwrap_model(model).encoders)
    present = {split: state.present(split, modalities, len(data.dataset)) for split, data in (("train", train_data), ("dev", dev_data))}
    return FitResult(state.best_epoch, state.best_dev, state.history, state.train_seconds, present)


def evaluated_weights(average: Optional[WeightAverage]) -> ContextManager[None]:
    """The weights that dev scores and the checkpoint keeps: within the block, the model holds
    `average`'s (`--ema-decay`) or, without one, its trained weights as they are."""
    return average.swapped_in() if average is not None else nullcontext()


def write_last_weights(run_dir: Path, improved: bool, model: torch.nn.Module) -> None:
    """Save the epoch just trained as the run's last weights (`--keep-last`): a second name
    of model.safetensors when the epoch was the best so far, else its own copy."""
    if improved:
        ckpt.link_file(run_dir / ckpt.WEIGHTS, run_dir / ckpt.LAST_WEIGHTS)
    else:
        ckpt.write_weights(run_dir / ckpt.LAST_WEIGHTS, checkpoint_state(model))


def check_finite(model: torch.nn.Module, epoch: int, loss: float) -> None:
    """Fail when training has diverged: a trained weight or batch-norm running statistic of
    `model` is NaN or infinite after epoch `epoch` (1-based). Its predictions would be argmax
    over NaN, the first class for every row, scored and saved like a trained model's. A
    non-finite loss alone is not enough: under fp16 the gradient scaler skips such a step
    and the weights stay whole."""
    # what training changes: the parameters that train and the batch norms' running statistics
    trained = [*(p.detach() for p in model.parameters() if p.requires_grad), *running_statistics(model).values()]
    if trained and not torch.stack([tensor.isfinite().all() for tensor in trained]).all().item():  # one device sync
        raise RecognizeError(f"epoch {epoch}: training diverged (mean loss {loss:.4g}; the model's weights are no longer "
                             "finite); lower --lr (or --head-lr) and train again with --overwrite")


def set_epoch(data: DataLoader, epoch: int) -> None:
    """Start epoch `epoch` of a (prepared) training loader: accelerate's loader, and the
    length-grouped batch sampler beneath it, which accelerate's wrapper for several
    processes (BatchSamplerShard) does not pass the epoch on to."""
    if hasattr(data, "set_epoch"):
        data.set_epoch(epoch)
    sampler = data.batch_sampler
    while hasattr(sampler, "batch_sampler"):
        sampler = sampler.batch_sampler
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def _train_epoch(model, data, optimizer, scheduler, accelerator, config, objective, epoch,
                 average: Optional[WeightAverage]) -> tuple[float, int, dict[str, np.ndarray]]:
    """One pass over the training batches, updating `average` (if any) after each optimiser
    step; returns the mean loss and the samples seen, over every process, and per modality the
    rows that some process's batch had without it (`{m}_present` False: its clip missing, or
    failing to decode when read)."""
    model.train()
    criterion = accelerator.unwrap_model(objective)
    needs_embedding = criterion.needs_embedding
    # with accumulation, or class weights on several processes, each step follows the loss of its window's rows on all
    # processes together (class weights on one process: weighted cross-entropy's own mean is that already)
    windowed = config.grad_accum > 1 or (criterion.class_weights is not None and accelerator.num_processes > 1)
    parameters = [*model.parameters(), *objective.parameters()]
    loss_sum = torch.zeros((), device=accelerator.device)
    window_weight = torch.zeros((), device=accelerator.device)
    modalities = list(accelerator.unwrap_model(model).encoders)
    absent = torch.zeros((len(modalities), len(data.dataset)), device=accelerator.device)  # counted on the device: no sync
    samples = 0
    start = time.perf_counter()
    with _progress(accelerator, f"epoch {epoch + 1}/{config.epochs}") as progress:
        task = progress.add_task("train", total=len(data), status="")
        for step, batch in enumerate(data, start=1):
            n = batch["labels"].shape[0]
            with accelerator.accumulate(model):
                logits, embedding = model(batch, with_embedding=True) if needs_embedding else (model(batch), None)
                loss = objective(logits, embedding, batch)
                if not windowed:
                    accelerator.backward(loss)
                else:  # the sum over the window (accelerate divides by grad_accum: undone), then / its normaliser
                    weight = criterion.normaliser(batch)
                    accelerator.backward(loss * (weight * config.grad_accum))
                    window_weight += weight
                    if accelerator.sync_gradients:  # the gradients are averaged over processes: so is the normaliser
                        total = accelerator.reduce(window_weight, reduction="mean")
                        for parameter in parameters:
                            if parameter.grad is not None:
                                parameter.grad.div_(total)
                        window_weight.zero_()
                if accelerator.sync_gradients and config.grad_clip > 0:
                    accelerator.clip_grad_norm_(parameters, config.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            if average is not None and accelerator.sync_gradients:  # a step, not a batch accumulated into one
                average.update()
            loss_sum += loss.detach() * n
            samples += n
            for row, modality in enumerate(modalities):
                if (present := batch.get(f"{modality}_present")) is not None:
                    absent[row].index_add_(0, batch["index"], present.logical_not().to(absent.dtype))
            if not progress.disable and (step % LOG_EVERY_STEPS == 0 or step == len(data)):  # no bar shown: no sync
                rate = samples / (time.perf_counter() - start)
                status = f"loss {loss_sum.item() / samples:.4f}  lr {scheduler.get_last_lr()[0]:.2e}  {rate:.0f} samples/s"
                progress.update(task, completed=step, status=status)
    totals = torch.cat([torch.stack([loss_sum, loss_sum.new_tensor(float(samples))]), absent.flatten()])
    totals = accelerator.reduce(totals, reduction="sum").cpu()  # one collective: the loss, the rows and the absent clips
    loss_total, samples = totals[:2].tolist()
    absent_rows = totals[2:].view(len(modalities), -1).numpy() > 0
    return loss_total / max(samples, 1), int(samples), dict(zip(modalities, absent_rows))


@dataclass
class Predictions:
    """A model's outputs over a split, in row order: logits (float32), true labels, and per
    modality the batches mark (`{m}_present`: audio and video, and text when served from
    the feature cache) which rows had it (False: a clip missing, or failing to decode)."""

    logits: np.ndarray
    labels: np.ndarray
    present: dict[str, np.ndarray]


def predict(model, data: DataLoader, accelerator: Accelerator) -> Predictions:
    """The model's outputs over `data`, gathered and put in row order (batches may come in
    any order). Inference mode: no autograd bookkeeping at all."""
    model.eval()
    gathered: dict[str, list[torch.Tensor]] = {}
    with torch.inference_mode():
        for batch in data:
            with accelerator.autocast():
                logits = model(batch)
            outputs = {"index": batch["index"], "logits": logits.float(), "labels": batch["labels"],
                       **{key: batch[key].to(torch.uint8) for key in batch if key.endswith("_present")}}
            for key, tensor in accelerator.gather_for_metrics(outputs).items():
                gathered.setdefault(key, []).append(tensor.cpu())
    columns = {key: torch.cat(parts).numpy() for key, parts in gathered.items()}
    order = np.argsort(columns["index"], kind="stable")
    present = {key.removesuffix("_present"): columns[key][order].astype(bool) for key in columns if key.endswith("_present")}
    return Predictions(columns["logits"][order], columns["labels"][order], present)


def predict_loader(model: torch.nn.Module, loader: DataLoader, precision: str) -> Predictions:
    """`predict` outside training: only the loader is prepared (sharded across processes);
    the model needs no DDP wrapper where nothing trains, and `predict` applies autocast."""
    accelerator = make_accelerator(precision)
    return predict(model.to(accelerator.device), accelerator.prepare(loader), accelerator)


def _progress(accelerator: Accelerator, title: str) -> Progress:
    """A rich progress bar with a loss/lr/throughput column, on the main process's terminal
    (not in logs: there, the per-epoch lines say the same)."""
    console = Console(stderr=True)
    return Progress(
        TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"), console=console, transient=True,
        disable=not (accelerator.is_main_process and console.is_terminal),
    )


@dataclass
class TrainingState:
    """Where training stands after a completed epoch: enough, with the weights and the
    optimiser, to continue exactly."""

    epoch: int = 0
    best_epoch: int = 0
    best_f1: float = -1.0
    best_dev: dict[str, Any] = field(default_factory=dict)
    bad_epochs: int = 0
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    absent_rows: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    """Per split ("train", "dev") and modality, the rows served without their input in some epoch so far."""

    def note_absent(self, split: str, absent: dict[str, np.ndarray]) -> None:
        """Add the rows flagged in `absent` (per modality, a bool per row) to `absent_rows[split]`."""
        noted = self.absent_rows.setdefault(split, {})
        for modality, flags in absent.items():
            noted[modality] = sorted(set(noted.get(modality, [])) | set(np.flatnonzero(flags).tolist()))

    def present(self, split: str, modalities: list[str], rows: int) -> dict[str, np.ndarray]:
        """Per modality, a bool per row of `split`: False where `absent_rows` has the row."""
        present = {modality: np.ones(rows, dtype=bool) for modality in modalities}
        for modality, absent in self.absent_rows.get(split, {}).items():
            present[modality][absent] = False
        return present


def save_state(run_dir: Path, state: TrainingState, model, optimizer, scheduler, objective: torch.nn.Module,
               average: Optional[WeightAverage] = None) -> None:
    """Write `state/epoch-{k}/` (weights, the objective's own, optimiser, the weight average if
    any, progress), then point `state/latest.json` at it and drop older epochs: a kill at any
    moment leaves the previous state intact."""
    state_dir = run_dir / ckpt.STATE
    folder = state_dir / f"epoch-{state.epoch}"
    folder.mkdir(parents=True, exist_ok=True)
    averaged = {}
    if average is not None:  # the checkpoint's weights are the average's: the trained ones get their own copy
        tensors, updates = average.state()
        ckpt.write_weights(folder / AVERAGE_FILE, tensors)
        averaged = {"average_updates": updates}
        ckpt.write_weights(folder / "model.safetensors", checkpoint_state(model))
    elif state.best_epoch == state.epoch:  # `fit` has just written these very weights as the best: no second copy
        ckpt.link_file(run_dir / ckpt.WEIGHTS, folder / "model.safetensors")
    elif (run_dir / ckpt.LAST_WEIGHTS).is_file():  # --keep-last has just written them (else `fit` removed the file)
        ckpt.link_file(run_dir / ckpt.LAST_WEIGHTS, folder / "model.safetensors")
    else:
        ckpt.write_weights(folder / "model.safetensors", checkpoint_state(model))
    ckpt.write_weights(folder / "objective.safetensors", dict(objective.state_dict()))
    tensors, meta = _optimizer_files(optimizer)
    ckpt.write_weights(folder / "optimizer.safetensors", tensors)
    ckpt.write_json(folder / "trainer.json", {**state.__dict__, "optimizer": meta, "scheduler": scheduler.state_dict(), **averaged})
    ckpt.write_json(state_dir / "latest.json", {"folder": folder.name})
    for old in state_dir.glob("epoch-*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)


AVERAGE_FILE = "average.safetensors"
"""In a resumable state's folder with `--ema-decay`: the weight average, beside the trained weights."""

TRAINED = "trained.json"
"""In `state/`: training has ended (the best weights are model.safetensors) and only the
test split's evaluation and metrics.json remain; the run drops `state/` once they are written."""


def mark_trained(run_dir: Path, state: TrainingState) -> None:
    """Record in `state/` that training has ended, with its progress (no tensors: none are
    needed to evaluate), then drop the epochs' resumable state. A run stopped before
    metrics.json is written (killed in its test evaluation) resumes straight to that."""
    state_dir = run_dir / ckpt.STATE
    ckpt.write_json(state_dir / TRAINED, state.__dict__)
    (state_dir / "latest.json").unlink(missing_ok=True)
    for old in state_dir.glob("epoch-*"):
        shutil.rmtree(old, ignore_errors=True)


def load_state(run_dir: Path, model, optimizer, scheduler, objective: torch.nn.Module,
               average: Optional[WeightAverage] = None) -> TrainingState:
    """Restore what `save_state` wrote into `model`, `objective`, `optimizer`, `scheduler` and
    `average`; of a run whose training has ended (`mark_trained`), only its progress."""
    state_dir = run_dir / ckpt.STATE
    try:
        if (state_dir / TRAINED).is_file():
            return TrainingState(**ckpt.read_json(state_dir / TRAINED))
        folder = state_dir / ckpt.read_json(state_dir / "latest.json")["folder"]
        saved = ckpt.read_json(folder / "trainer.json")
        model.load_state_dict(ckpt.read_weights(folder / "model.safetensors"), strict=False)
        objective.load_state_dict(ckpt.read_weights(folder / "objective.safetensors"))
        optimizer.load_state_dict(_optimizer_state(ckpt.read_weights(folder / "optimizer.safetensors"), saved.pop("optimizer")))
        scheduler.load_state_dict(saved.pop("scheduler"))
        if average is not None:
            average.load(ckpt.read_weights(folder / AVERAGE_FILE), saved.pop("average_updates"))
        return TrainingState(**saved)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:  # JSON that parses but is not what save_state wrote
        raise RecognizeError(f"{state_dir}: damaged resumable state ({type(error).__name__}: {first_line(error)}); "
                             "--overwrite trains the run again") from None


def _optimizer_files(optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser's state_dict into tensors (for safetensors) and the rest (for JSON)."""
    state_dict = optimizer.state_dict()
    tensors = {f"{pid}.{key}": value for pid, entry in state_dict["state"].items() for key, value in entry.items()}
    return tensors, {"param_groups": state_dict["param_groups"]}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Rebuild an optimiser state_dict from `_optimizer_files`' two parts."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}
