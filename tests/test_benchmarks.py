"""The benchmark scripts: stdout holds their JSON lines alone, backbones load from
safetensors only, and the machine is described in one shared place."""

import ast
import json
import os
import subprocess
import sys

from helpers import ROOT, load_script

BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


def run_benchmark(script: str, *arguments: str) -> subprocess.CompletedProcess:
    """`python benchmarks/SCRIPT arguments...` on this checkout's package; the finished process."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, f"benchmarks/{script}", *arguments], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=600)


def test_a_training_benchmark_prints_only_json_lines_on_stdout(meld_dir, tiny_bert):
    result = run_benchmark("two_stage.py", str(meld_dir), str(tiny_bert), "--seeds", "1", "--epochs", "1",
                           "--stage2-epochs", "1", "--batch-size", "16")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["stage"] for line in lines] == ["full", "full -> classifier", "summary"]
    assert "epoch 1/1: " in result.stderr  # the training loop's progress, moved off stdout


def test_model_weights_load_from_safetensors_only():
    unsafe = []
    for path in BENCHMARKS:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id.startswith("AutoModel")):
                keywords = {k.arg: k.value for k in node.keywords}
                if not (isinstance(keywords.get("use_safetensors"), ast.Constant) and keywords["use_safetensors"].value is True):
                    unsafe.append(f"{path.name}:{node.lineno}")
    assert unsafe == []


def test_new_widths_help_describes_the_benchmark():
    result = run_benchmark("new_widths.py", "--help")
    assert result.returncode == 0, result.stderr
    assert "Does a training step pay a cold cost the first time it meets a new sequence length" in result.stdout


def test_machine_is_described_in_jsonl_alone():
    machine = load_script("benchmarks/jsonl.py").machine
    assert machine("PyAV 1.2").endswith(" torch threads, PyAV 1.2") and "cores" in machine()
    defined = [path.name for path in BENCHMARKS
               if any(isinstance(node, ast.FunctionDef) and node.name == "machine" for node in ast.walk(ast.parse(path.read_text())))]
    assert defined == ["jsonl.py"]
