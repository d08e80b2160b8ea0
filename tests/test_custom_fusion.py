"""A fusion of one's own, registered in FUSIONS from a script as `recognize.model.fusion`
describes: it trains and evaluates through the public API; one that does not keep its
`output_size` is named in the error; its checkpoint, where it is not registered, is refused
with a line naming the checkpoint's config.json, not a flag `eval` does not have; and
`--fusion`'s help names every registered fusion."""

import dataclasses

import pytest
import torch
from torch import nn

from recognize import ExperimentConfig, RecognizeError, evaluate, train
from recognize.builder import build_model
from recognize.dataset.synthetic import write_joint_meld
from recognize.model.fusion import FUSIONS
from recognize.tiny import write_tiny_wav2vec2


class Gated(nn.Module):
    """Each modality's tanh projection, scaled by a sigmoid gate over all the vectors, summed."""

    def __init__(self, input_sizes: list[int], output_size: int, rank: int = 0) -> None:
        super().__init__()
        self.projections = nn.ModuleList(nn.Linear(size, output_size) for size in input_sizes)
        self.gates = nn.ModuleList(nn.Linear(sum(input_sizes), output_size) for _ in input_sizes)
        self.output_size = output_size

    def forward(self, vectors: list[torch.Tensor], present=None) -> torch.Tensor:
        """The gated sum (B, output_size)."""
        joined = torch.cat(vectors, dim=-1)
        return sum(torch.sigmoid(gate(joined)) * torch.tanh(project(vector))
                   for project, gate, vector in zip(self.projections, self.gates, vectors))


class Sizeless(Gated):
    """A fusion that forgets to keep `output_size`."""

    def __init__(self, input_sizes: list[int], output_size: int, rank: int = 0) -> None:
        super().__init__(input_sizes, output_size, rank)
        del self.output_size


@pytest.fixture(scope="module")
def text_audio(tmp_path_factory, tiny_bert) -> ExperimentConfig:
    """A small frozen T+A setting on generated data (fusion to be chosen)."""
    tmp = tmp_path_factory.mktemp("custom-fusion")
    data = write_joint_meld(tmp / "MELD", seed=0, dialogues={"train": 4, "dev": 2, "test": 2})
    speech = write_tiny_wav2vec2(tmp / "tiny-wav2vec2")
    return ExperimentConfig(data=str(data), modal="T+A", text_model=str(tiny_bert), audio_model=str(speech), mode="frozen",
                            epochs=1, batch_size=8, fusion_dim=16, workers=0, output_dir=str(tmp / "checkpoints"))


def test_a_registered_fusion_trains_and_evaluates_and_its_checkpoint_needs_it(text_audio, monkeypatch):
    monkeypatch.setitem(FUSIONS, "gated", Gated)
    folder = train(dataclasses.replace(text_audio, fusion="gated"))
    assert folder.name == f"T+A--EF--GATED({text_audio.run_name.split('(')[1]}"
    assert evaluate(folder, split="test")["samples"] > 0

    monkeypatch.delitem(FUSIONS, "gated")
    with pytest.raises(RecognizeError) as error:
        evaluate(folder, split="test")
    assert str(error.value) == (f"{folder / 'config.json'}: fusion 'gated' is not in recognize.model.fusion.FUSIONS "
                                "(lmf, tfn, concat, attention); a fusion of your own must be registered there "
                                "(FUSIONS['gated'] = ...) before its checkpoints load")


def test_a_fusion_without_output_size_is_named(text_audio, monkeypatch):
    monkeypatch.setitem(FUSIONS, "sizeless", Sizeless)
    with pytest.raises(TypeError) as error:
        build_model(dataclasses.replace(text_audio, fusion="sizeless"))
    assert str(error.value) == ("fusion 'sizeless' (Sizeless): its output_size attribute is None, not the output_size "
                                "it was built with (16); a fusion module sets self.output_size = output_size, the width "
                                "of the vector it returns, which the head reads")


def test_fusion_help_names_every_registered_fusion():
    help_text = next(f for f in dataclasses.fields(ExperimentConfig) if f.name == "fusion").metadata["help"]
    assert [name for name in FUSIONS if name not in help_text] == []
