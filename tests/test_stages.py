"""Multi-stage training: `--init-from` copies exactly the intended tensors (encoders of the
modalities two runs share; fusion and head only between runs that read the same inputs),
records the lineage, and `eval` names the stages as the research tables do."""

import json

import pytest
import torch
from accelerate.utils import set_seed
from safetensors.torch import load_file
from typer.testing import CliRunner

from recognize import ExperimentConfig, RecognizeError, train
from recognize.builder import build_model
from recognize.cli import app
from recognize.dataset.synthetic import write_joint_meld
from recognize.evaluator import load_trained
from recognize.lineage import stages
from recognize.tiny import write_tiny_wav2vec2


@pytest.fixture(scope="module")
def setting(tmp_path_factory, tiny_bert) -> dict:
    """Settings shared by every stage: small text + audio data, tiny encoders, one epoch."""
    tmp = tmp_path_factory.mktemp("stages")
    data = write_joint_meld(tmp / "MELD", seed=0, dialogues={"train": 10, "dev": 4, "test": 4})
    return dict(data=str(data), text_model=str(tiny_bert), audio_model=str(write_tiny_wav2vec2(tmp / "tiny-wav2vec2")),
                epochs=1, batch_size=8, fusion_dim=32, workers=0, output_dir=str(tmp / "checkpoints"))


@pytest.fixture(scope="module")
def first_stages(setting) -> dict:
    """Text alone and audio alone, fully tuned."""
    return {m: train(ExperimentConfig(modal=m, mode="full", lr=1e-3, **setting)) for m in ("T", "A")}


def state_of(folder) -> dict[str, torch.Tensor]:
    """Every tensor of a trained model, rebuilt from its checkpoint folder."""
    return load_trained(folder)[2].model.state_dict()


def test_init_from_copies_the_encoders_of_each_modality_and_nothing_else(setting, first_stages, tmp_path):
    # lr 0: the stored tensors are exactly the initial ones
    config = ExperimentConfig(modal="T+A", mode="frozen", lr=0.0, init_from=[str(first_stages["T"]), str(first_stages["A"])],
                              **{**setting, "output_dir": str(tmp_path)})
    folder = train(config)
    stored = load_file(str(folder / "model.safetensors"))
    text, audio = state_of(first_stages["T"]), state_of(first_stages["A"])
    set_seed(config.seed)
    fresh = build_model(ExperimentConfig.from_dict({**config.to_dict(), "init_from": []})).model.state_dict()

    encoder_t = {k for k in fresh if k.startswith("encoders.T.")}
    encoder_a = {k for k in fresh if k.startswith("encoders.A.")}
    own = {k for k in fresh if k.startswith(("fusion.", "head."))}
    assert set(stored) == encoder_t | encoder_a | own
    assert all(torch.equal(stored[k], text[k]) for k in encoder_t)
    assert all(torch.equal(stored[k], audio[k]) for k in encoder_a)
    # the text run's head is Linear(32, 7) like this one's, yet it read a text vector, not a fused one
    assert stored["head.1.weight"].shape == text["head.1.weight"].shape
    assert all(torch.equal(stored[k], fresh[k]) for k in own)

    lineage = json.loads((folder / "config.json").read_text())["lineage"]
    assert [(e["run_name"], e["loaded"]) for e in lineage] == [("T--ET(tiny-bert)", ["encoders.T"]),
                                                               ("A--ET(tiny-wav2vec2)", ["encoders.A"])]


def test_a_stage_of_the_same_modalities_carries_its_head_too(setting, first_stages, tmp_path):
    folder = train(ExperimentConfig(modal="T", mode="frozen", lr=0.0, init_from=[str(first_stages["T"])],
                                    **{**setting, "output_dir": str(tmp_path)}))
    stored, text = load_file(str(folder / "model.safetensors")), state_of(first_stages["T"])
    assert set(stored) == set(text)
    assert all(torch.equal(stored[k], text[k]) for k in stored)
    assert json.loads((folder / "config.json").read_text())["lineage"][0]["loaded"] == ["encoders.T", "head"]


def test_a_text_stage_keeps_its_pooling_and_a_head_over_other_text_inputs_is_not_loaded(setting, tmp_path):
    """Stage 1 pools by mean (not the tiny BERT's own CLS): stage 2 with --pooling auto keeps
    mean and takes the head; stage 2 with another context reads other vectors: no head."""
    stage1 = train(ExperimentConfig(modal="T", mode="full", lr=1e-3, pooling="mean", **{**setting, "output_dir": str(tmp_path / "1")}))
    same = train(ExperimentConfig(modal="T", mode="frozen", init_from=[str(stage1)], **{**setting, "output_dir": str(tmp_path / "2")}))
    other = train(ExperimentConfig(modal="T", mode="frozen", init_from=[str(stage1)], context=1,
                                   **{**setting, "output_dir": str(tmp_path / "3")}))

    records = [json.loads((folder / "config.json").read_text()) for folder in (same, other)]
    assert [r["experiment"]["pooling"] for r in records] == ["mean", "mean"]
    assert [r["lineage"][0]["loaded"] for r in records] == [["encoders.T", "head"], ["encoders.T"]]


def test_the_research_tables_three_stage_recipe_is_recorded_and_named_by_eval(setting, first_stages):
    joint = train(ExperimentConfig(modal="T+A", mode="full", lr=1e-3, init_from=[str(first_stages["T"])], **setting))
    last = train(ExperimentConfig(modal="T+A", mode="frozen", init_from=[str(joint)], **setting))
    assert json.loads((last / "config.json").read_text())["lineage"][0]["loaded"] == ["encoders.A", "encoders.T", "fusion", "head"]

    result = CliRunner().invoke(app, ["eval", str(last), "--split", "dev"])
    assert result.exit_code == 0, result.output
    expected = "Text-only Full Tuning -> Full Tuning -> Training Classification"
    assert f"training: {expected} (initialised from {joint})" in result.output.replace("\n", "")
    assert json.loads((last / "eval-dev.json").read_text())["training"] == expected


def test_stage_names_of_several_sources_and_of_a_single_stage():
    text, audio = ({"modal": m, "mode": "full", "lineage": []} for m in ("T", "A"))
    assert stages("T+A", "frozen", [text, audio]) == "(Text-only Full Tuning + Audio-only Full Tuning) -> Training Classification"
    assert stages("T", "lora", []) == "LoRA"
    assert stages("T", "frozen", [{"modal": "T", "mode": "full", "lineage": []}]) == "Full Tuning -> Training Classification"


def test_a_source_sharing_no_modality_is_refused_and_the_old_run_kept(setting, first_stages, tmp_path):
    config = ExperimentConfig(modal="A", mode="frozen", init_from=[str(first_stages["T"])], **{**setting, "output_dir": str(tmp_path)})
    config.run_dir.mkdir()
    (config.run_dir / "config.json").write_text("{}")
    with pytest.raises(RecognizeError, match=r"--init-from .*T--ET\(tiny-bert\): a T checkpoint shares no modality with --modal A"):
        train(config, overwrite=True)
    assert (config.run_dir / "config.json").read_text() == "{}"
