"""Two processes through torchrun (gloo on CPU), as on several GPUs: one checkpoint folder,
written once, whose recorded metrics `eval` reproduces."""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from recognize import ExperimentConfig, evaluate, train
from recognize.builder import eval_loader, make_split
from recognize.dataset.meld import load_split
from recognize.dataset.synthetic import write_synthetic_meld
from recognize.evaluator import load_trained

from helpers import train_interrupted

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
"""torchrun on a free port of its own choosing (--standalone): without it every launch takes port
29500, and a second torchrun on the machine (another test run, another job) fails to start."""


def test_two_process_training_writes_one_consistent_checkpoint(meld_dir, tiny_bert, tmp_path):
    command = [*TORCHRUN, "recognize/cli.py", "train",
               str(meld_dir), "--text-model", str(tiny_bert), "--mode", "full", "--lr", "1e-3", "--epochs", "6",
               "--batch-size", "8", "--pooling", "mean", "--output-dir", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "T--ET(tiny-bert)"
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "history.csv", "metrics.json", "model.safetensors"]
    assert result.stdout.count("saved ") == 1  # the summary comes from the main process only
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["dev"]["weighted_f1"] > 0.6  # 2 x 8 per step, learns as a single process would
    assert evaluate(folder)["weighted_f1"] == pytest.approx(metrics["test"]["weighted_f1"], abs=1e-9)
    # 205 batches of 8, 103 per process (the last round padded), and accelerate steps the schedule once per
    # process: 206 steps an epoch, 1,236 in all, 124 of warm-up (0.1), then a linear decay that ends at the end
    with open(folder / "history.csv") as handle:
        rates = [float(row["lr"]) for row in csv.DictReader(handle)]
    assert rates == pytest.approx([1e-3 * (1236 - 206 * epoch) / (1236 - 124) for epoch in range(1, 7)], abs=1e-12)


def test_two_processes_distil_from_a_frozen_teacher_over_seeds_and_evaluate_them(meld_dir, tiny_bert, tmp_path):
    """A frozen (feature-cached) teacher's outputs are computed while both processes build its
    features; each seed's metrics.json is read by both; `eval` prints the seeds once."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "EMOTION_RECOGNIZE_CACHE": str(tmp_path / "cache")}
    teacher = train(ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode="frozen", epochs=1,
                                     pooling="mean", output_dir=str(tmp_path / "teacher")))
    launch = [*TORCHRUN, "recognize/cli.py"]
    student = [*launch, "train", str(meld_dir), "--text-model", str(tiny_bert), "--mode", "full", "--epochs", "1",
               "--pooling", "mean", "--teacher", str(teacher), "--distill", "kd", "--seeds", "1,2",
               "--output-dir", str(tmp_path / "students")]
    result = subprocess.run(student, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    setting, = (tmp_path / "students").iterdir()
    assert sorted(p.name for p in setting.iterdir()) == ["aggregate.json", "seed-1", "seed-2"]

    result = subprocess.run([*launch, "eval", str(setting), "--split", "dev"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (result.stdout.count("seed 1:"), result.stdout.count("seed 2:")) == (1, 1)
    per_seed = [json.loads((setting / f"seed-{s}" / "eval-dev.json").read_text())["weighted_f1"] for s in (1, 2)]
    assert json.loads((setting / "eval-dev.json").read_text())["scores"]["weighted_f1"]["values"] == per_seed
    # 336 dev rows in batches of 64 on 2 processes: the last round pads the short batch with repeated rows, which the
    # gathered outputs drop, so every row counts once, as in one process
    rows = load_split(meld_dir, "dev")
    with open(setting / "seed-1" / "predictions-dev.csv") as handle:
        predicted = [(int(row["dialogue_id"]), int(row["utterance_id"])) for row in csv.DictReader(handle)]
    assert predicted == list(zip(rows["dialogue_id"], rows["utterance_id"]))
    two_processes = json.loads((setting / "seed-1" / "eval-dev.json").read_text())
    one_process = evaluate(setting / "seed-1", split="dev")
    assert two_processes["samples"] == one_process["samples"] == len(rows) == 336
    assert two_processes["confusion"] == one_process["confusion"]



REPLICA_PROBE = """
import sys
from safetensors.torch import save_file
from recognize import engine
from recognize.cli import main

folder, sys.argv = sys.argv[1], sys.argv[:1] + sys.argv[2:]
evaluated, passes = engine.predict, []


def probe(model, data, accelerator):
    # this process's head before each dev pass (and the test split's), then the pass as usual
    passes.append(len(passes) + 1)
    head = accelerator.unwrap_model(model).head[1]
    save_file({"weight": head.weight.detach().clone(), "bias": head.bias.detach().clone()},
              f"{folder}/rank-{accelerator.process_index}-epoch-{passes[-1]}.safetensors")
    return evaluated(model, data, accelerator)


engine.predict = probe
main()
"""


@pytest.mark.parametrize("averaging", [[], ["--ema-decay", "0.9"]])
def test_class_weighted_accumulated_steps_keep_the_processes_replicas_equal(meld_dir, tiny_bert, tmp_path, averaging):
    """With --class-weights a window's loss is divided by its rows' summed weights, which
    differ between processes: every process must divide by the same total (the processes'
    together), or each replica takes its own step and they drift apart unnoticed. With
    --ema-decay, dev scores each process's weight average: those must be equal too."""
    script, probes = tmp_path / "probe.py", tmp_path / "probes"
    script.write_text(REPLICA_PROBE)
    probes.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
           "EMOTION_RECOGNIZE_CACHE": str(tmp_path / "cache")}
    command = [*TORCHRUN, str(script), str(probes), "train",
               str(meld_dir), "--text-model", str(tiny_bert), "--mode", "frozen", "--epochs", "2", "--batch-size", "8",
               "--grad-accum", "3", "--class-weights", "--lr", "1e-2", "--pooling", "mean", "--output-dir", str(tmp_path),
               *averaging]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for epoch in (1, 2):
        first, second = (load_file(str(probes / f"rank-{rank}-epoch-{epoch}.safetensors")) for rank in (0, 1))
        assert all(torch.equal(first[name], second[name]) for name in first), epoch


def test_the_train_loss_in_history_is_the_mean_over_every_processs_rows(meld_dir, tiny_bert, tmp_path):
    """At lr 0 every batch meets the initial weights, so an epoch's loss is the cross-entropy
    of the stored (untrained) head over all 1,638 training rows; 182 batches of 9, 91 per
    process, repeat none. Each process alone saw half of them."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "EMOTION_RECOGNIZE_CACHE": str(tmp_path / "cache")}
    command = [*TORCHRUN, "recognize/cli.py", "train",
               str(meld_dir), "--text-model", str(tiny_bert), "--mode", "frozen", "--epochs", "1", "--batch-size", "9",
               "--lr", "0", "--dropout", "0", "--pooling", "mean", "--output-dir", str(tmp_path / "runs")]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    folder, = (tmp_path / "runs").iterdir()
    with open(folder / "history.csv") as handle:
        recorded = float(next(csv.DictReader(handle))["train_loss"])

    config, _, built = load_trained(folder)
    split = make_split(config, built, "train")
    with torch.no_grad():
        logits = torch.cat([built.model.eval()(batch) for batch in eval_loader(config, built, split.dataset)])
        labels = torch.cat([batch["labels"] for batch in eval_loader(config, built, split.dataset)])
    assert len(labels) == 1638
    assert recorded == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), abs=2e-6)  # 6 decimals


def free_port() -> int:
    """A TCP port nobody listens on now, for a process group's rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_write_that_fails_on_the_main_process_stops_every_process_with_its_error(tiny_bert, tmp_path, monkeypatch):
    """Launched as a cluster scheduler launches them (srun, mpirun: no torchrun to stop the
    others when one fails), two processes resume a run whose history.csv is a folder: the
    main process alone writes it, fails, and shares its error, so the other stops with the
    same line instead of meeting a process that has gone at the next collective."""
    data = write_synthetic_meld(tmp_path / "MELD", seed=0, dialogues={"train": 40, "dev": 10, "test": 10})
    config = ExperimentConfig(data=str(data), text_model=str(tiny_bert), mode="frozen", epochs=2, pooling="mean",
                              output_dir=str(tmp_path / "runs"))
    train_interrupted(config, 1, monkeypatch)
    history = config.run_dir / "history.csv"
    history.unlink()
    history.mkdir()
    command = [sys.executable, "recognize/cli.py", "train", str(data), "--text-model", str(tiny_bert), "--mode", "frozen",
               "--epochs", "2", "--pooling", "mean", "--output-dir", str(tmp_path / "runs"), "--resume"]
    group = {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    processes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1", **group, "RANK": str(rank), "LOCAL_RANK": str(rank)})
                 for rank in (0, 1)]
    try:
        outcomes = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:
            process.kill()
    expected = f"error: {history}: is a folder; give a file name"
    for rank, (process, (_, stderr)) in enumerate(zip(processes, outcomes)):
        assert process.returncode == 1, (rank, stderr[-3000:])
        assert [line for line in stderr.splitlines() if line.strip()] == [expected], (rank, stderr[-3000:])
