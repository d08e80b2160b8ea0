"""Two processes through torchrun (gloo on CPU), as on several GPUs: one checkpoint folder,
written once, whose recorded metrics `eval` reproduces."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recognize import evaluate

ROOT = Path(__file__).resolve().parent.parent


def test_two_process_training_writes_one_consistent_checkpoint(meld_dir, tiny_bert, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "recognize/cli.py", "train",
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
