"""Fusion networks against direct computations: LMF's sum over ranks of products of
projections, the text-led attention written out by hand (absent modalities masked),
gradients reaching every parameter, and LMF at full rank reproducing TFN; and every fusion
learning a label that needs text and audio together."""

import itertools
import json

import pytest
import torch

from recognize import ExperimentConfig, train
from recognize.dataset.synthetic import write_joint_meld
from recognize.model.fusion import FUSIONS, LMF, TFN, TextLedAttention
from recognize.tiny import write_tiny_wav2vec2

SIZES = {2: [3, 4], 3: [3, 2, 4]}


def vectors(sizes: list[int], batch: int = 5, seed: int = 0) -> list[torch.Tensor]:
    """Random pooled vectors of the given sizes, float64."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, size, generator=generator, dtype=torch.float64) for size in sizes]


@pytest.mark.parametrize("modalities", [2, 3])
def test_lmf_is_the_weighted_sum_over_ranks_of_products_of_projections(modalities):
    sizes, rank, out = SIZES[modalities], 3, 2
    torch.manual_seed(0)
    lmf = LMF(sizes, out, rank).double()
    with torch.no_grad():
        lmf.fusion_bias.normal_()
    zs = vectors(sizes)

    expected = torch.zeros(5, out, dtype=torch.float64)
    for b in range(5):
        for o in range(out):
            total = lmf.fusion_bias[o].item()
            for i in range(rank):
                product = 1.0
                for z, factor in zip(zs, lmf.factors):
                    extended = list(z[b].tolist()) + [1.0]
                    product *= sum(extended[d] * factor[i, d, o].item() for d in range(len(extended)))
                total += lmf.fusion_weights[0, i].item() * product
            expected[b, o] = total

    assert torch.allclose(lmf(zs), expected, atol=1e-12)
    assert lmf([z[:1] for z in zs]).shape == (1, out)  # batch of one: nothing squeezed away


@pytest.mark.parametrize("name", list(FUSIONS))
@pytest.mark.parametrize("modalities", [2, 3])
def test_gradients_reach_every_parameter_of_every_fusion(name, modalities):
    fusion = FUSIONS[name](SIZES[modalities], 4, 3).double()
    fusion(vectors(SIZES[modalities])).square().sum().backward()

    names = [n for n, _ in fusion.named_parameters()]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.parameters()), names
    if name == "lmf":
        assert {"fusion_weights", "fusion_bias"} <= set(names)


@pytest.mark.parametrize("modalities", [2, 3])
def test_lmf_at_full_rank_reproduces_tfn_exactly(modalities):
    """TFN maps the outer product T = [z_1, 1] x ... x [z_M, 1] of its projected vectors
    z_m linearly: h_o = <W_o, T> + c_o.
    LMF with one rank per index tuple (j_1, ..., j_{M-1}) of the first M-1 extended vectors,
    factors W_m^(i)[:, o] = e_{j_m} for m < M and W_M^(i)[:, o] = W_o[j_1, ..., j_{M-1}, :],
    lambda = 1 and b = c, computes sum over the tuples of prod_{m<M} z_m[j_m] * <z_M, W_o[j..]>,
    which is <W_o, T>: so LMF at rank prod_{m<M}(d_m + 1) can represent any TFN."""
    sizes, out = SIZES[modalities], 3
    torch.manual_seed(1)
    tfn = TFN([8] * modalities, out, projection=sizes[0]).double()
    sizes = [sizes[0]] * modalities  # the projected vectors' sizes
    extended = [size + 1 for size in sizes]
    tuples = list(itertools.product(*(range(e) for e in extended[:-1])))
    lmf = LMF(sizes, out, rank=len(tuples)).double()
    weight = tfn.linear.weight.detach().reshape(out, *extended)
    with torch.no_grad():
        for factor in lmf.factors:
            factor.zero_()
        for i, index in enumerate(tuples):
            for m, j in enumerate(index):
                lmf.factors[m][i, j, :] = 1.0
            lmf.factors[-1][i] = weight[(slice(None), *index)].T
        lmf.fusion_weights.fill_(1.0)
        lmf.fusion_bias.copy_(tfn.linear.bias)

    raw = vectors([8] * modalities)
    projected = [project(z) for project, z in zip(tfn.projections, raw)]
    assert torch.allclose(lmf(projected), tfn(raw), atol=1e-10)


@pytest.mark.parametrize("modalities", [2, 3])
def test_tfn_fuses_an_absent_modality_as_its_constant_slice_alone(modalities):
    torch.manual_seed(2)
    tfn = TFN([8] * modalities, 3, projection=4).double()
    raw = vectors([8] * modalities, batch=4)
    present = [None] * (modalities - 1) + [torch.tensor([True, False, True, False])]
    projected = [project(z) for project, z in zip(tfn.projections, raw)]
    projected[-1] = projected[-1] * torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64).unsqueeze(-1)
    assert torch.allclose(tfn(raw, present), tfn.fuse(projected), atol=1e-12)  # (0, ..., 0, 1) for rows 1 and 3
    changed = [*raw[:-1], raw[-1] + 5.0]
    assert torch.allclose(tfn(changed, present)[1::2], tfn(raw, present)[1::2], atol=1e-12)  # whatever the vector held


def attention_by_hand(fusion: TextLedAttention, zs: list[torch.Tensor], row: int, keys: list[int]) -> torch.Tensor:
    """TextLedAttention's output for one row, written out: layer-normalised projections,
    the lead's query against the keys of the modalities in `keys`, a softmax per head, the
    attended values through the output projection, the gate, the final ReLU layer."""
    def layer_norm(x, norm):
        return (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + norm.eps) * norm.weight + norm.bias

    tokens = [layer_norm(linear.weight @ z[row] + linear.bias, norm) for (linear, norm), z in zip(fusion.projections, zs)]
    attention = fusion.attention
    size, heads = fusion.output_size, attention.num_heads
    w_q, w_k, w_v = attention.in_proj_weight.split(size)
    b_q, b_k, b_v = attention.in_proj_bias.split(size)
    query = w_q @ tokens[0] + b_q
    width = size // heads
    attended = []
    for h in range(heads):
        part = slice(h * width, (h + 1) * width)
        scores = torch.stack([(query[part] * (w_k @ tokens[m] + b_k)[part]).sum() / width ** 0.5 for m in keys])
        weights = torch.exp(scores - scores.max()) / torch.exp(scores - scores.max()).sum()
        attended.append(sum(w * (w_v @ tokens[m] + b_v)[part] for w, m in zip(weights, keys)))
    context = attention.out_proj.weight @ torch.cat(attended) + attention.out_proj.bias
    gate = torch.sigmoid(fusion.gate.weight @ torch.cat([tokens[0], context]) + fusion.gate.bias)
    return torch.relu(fusion.output.weight @ (tokens[0] + gate * context) + fusion.output.bias)


@pytest.mark.parametrize("modalities", [2, 3])
def test_attention_fusion_matches_a_direct_computation_and_ignores_absent_modalities(modalities):
    sizes = SIZES[modalities]
    torch.manual_seed(0)
    fusion = TextLedAttention(sizes, 8).double().eval()
    zs = vectors(sizes)
    fused = fusion(zs)
    for row in range(5):
        assert torch.allclose(fused[row], attention_by_hand(fusion, zs, row, list(range(modalities))), atol=1e-12)

    # rows 1 and 3 lack the second modality: it is left out of their keys, whatever its vector
    present = [None, torch.tensor([True, False, True, False, True])] + [None] * (modalities - 2)
    masked = fusion(zs, present)
    changed = [z.clone() for z in zs]
    changed[1][[1, 3]] = 0.0
    assert torch.allclose(fusion(changed, present), masked, atol=1e-12)
    for row in range(5):
        keys = [m for m in range(modalities) if not (m == 1 and row in (1, 3))]
        assert torch.allclose(masked[row], attention_by_hand(fusion, zs, row, keys), atol=1e-12)
    assert fusion([z[:1] for z in zs], [p if p is None else p[:1] for p in present]).shape == (1, 8)


def test_attention_fusion_row_without_its_lead_attends_to_the_others():
    """A+V: rows 1 and 3 lack audio (the lead, zero vectors as the classifier sends them),
    row 3 lacks video too. Row 1 attends to its video alone; row 3, having nothing, attends
    to the lead's constant projection."""
    torch.manual_seed(0)
    fusion = TextLedAttention([6, 5], 8).double().eval()
    zs = vectors([6, 5])
    zs[0][[1, 3]] = 0.0
    zs[1][3] = 0.0
    present = [torch.tensor([True, False, True, False, True]), torch.tensor([True, True, True, False, True])]
    fused = fusion(zs, present)
    keys = {0: [0, 1], 1: [1], 2: [0, 1], 3: [0], 4: [0, 1]}
    for row, row_keys in keys.items():
        assert torch.allclose(fused[row], attention_by_hand(fusion, zs, row, row_keys), atol=1e-12)
    assert not torch.allclose(fused[1], attention_by_hand(fusion, zs, 1, [0, 1]), atol=1e-6)


@pytest.fixture(scope="module")
def joint_runs(tmp_path_factory, tiny_bert) -> dict:
    """Frozen-backbone runs on data whose label is the exclusive or of a text cue and a tone:
    text alone, audio alone, and text + audio with each fusion of the registry."""
    tmp = tmp_path_factory.mktemp("joint")
    data = write_joint_meld(tmp / "MELD", seed=0, dialogues={"train": 80, "dev": 20, "test": 20})
    speech = write_tiny_wav2vec2(tmp / "tiny-wav2vec2")
    settings = dict(data=str(data), text_model=str(tiny_bert), audio_model=str(speech), pooling="mean", mode="frozen",
                    lr=3e-3, epochs=25, batch_size=16, fusion_dim=32, workers=0, output_dir=str(tmp / "checkpoints"))
    runs = {"T": ExperimentConfig(modal="T", **settings), "A": ExperimentConfig(modal="A", **settings)}
    runs.update({fusion: ExperimentConfig(modal="T+A", fusion=fusion, **settings) for fusion in FUSIONS})
    return {name: json.loads((train(config) / "metrics.json").read_text()) for name, config in runs.items()}


@pytest.mark.parametrize("fusion", list(FUSIONS))
def test_each_fusion_learns_what_neither_modality_shows_alone(joint_runs, fusion):
    best_single = max(joint_runs[m]["test"]["accuracy"] for m in ("T", "A"))
    assert best_single < 0.66  # chance is about 0.5: neither modality alone tells the label
    assert joint_runs[fusion]["test"]["accuracy"] > best_single + 0.15
    assert joint_runs[fusion]["dev"]["accuracy"] > 0.8
