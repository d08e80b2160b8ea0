"""Fusion networks: the pooled vectors of several modalities, in the model's modality order,
-> one vector of `output_size` for the classification head. `FUSIONS` maps each `--fusion`
name to its class; each takes (input_sizes, output_size, rank) (`--fusion-dim` is
output_size, `--lmf-rank` rank), keeps `self.output_size = output_size` (the head is built
to read that width), and is called with the vectors and, per modality, which rows have it
(`present`, (B,) booleans, or None: all), returning (B, output_size).

A fusion of your own is a class of that shape and an entry in `FUSIONS` under a name of
lower-case letters, digits and underscores (`--fusion` is read in lower case). Added here
(and to `--fusion`'s help in config.py) it is a `--fusion` value of every command; added
from a script (`FUSIONS["gated"] = Gated`, before `train`) it serves that script's process
only: the checkpoints it writes load (`evaluate`, `eval`, `predict`, `--init-from`) only
where it is registered.

A modality missing from a row arrives as a zero vector (see `classifier.py`). In LMF and
TFN its 1-appended vector is then (0, ..., 0, 1): the modality contributes only its
constant factor row, the same for every row without it, so the others decide. The
attention fusion leaves it out of the keys it attends to (the lead too, unless the row has
nothing else).
"""

from typing import Optional

import torch
from torch import nn

Presence = Optional[list[Optional[torch.Tensor]]]
"""Per modality, (B,) booleans marking the rows that have it, or None (every row has it)."""


def with_one(vector: torch.Tensor) -> torch.Tensor:
    """`vector` (B, D) with a constant 1 appended: (B, D + 1)."""
    return torch.cat([vector, vector.new_ones(vector.shape[0], 1)], dim=-1)


class LMF(nn.Module):
    """Low-rank Multimodal Fusion (Liu et al., ACL 2018):
    h = sum_i lambda_i * prod_m ([z_m, 1] W_m^(i)) + b, with modality-specific factors
    W_m^(i) of shape (d_m + 1, output_size) for i = 1..rank. The factors, the fusion
    weights lambda and the bias b are all parameters of this module, so all of them train."""

    def __init__(self, input_sizes: list[int], output_size: int, rank: int) -> None:
        super().__init__()
        self.factors = nn.ParameterList(nn.Parameter(torch.empty(rank, size + 1, output_size)) for size in input_sizes)
        self.fusion_weights = nn.Parameter(torch.empty(1, rank))
        self.fusion_bias = nn.Parameter(torch.zeros(output_size))
        for factor in self.factors:
            nn.init.xavier_normal_(factor)
        nn.init.xavier_normal_(self.fusion_weights)
        self.output_size = output_size

    def forward(self, vectors: list[torch.Tensor], present: Presence = None) -> torch.Tensor:
        """The fused vector (B, output_size) of the modalities' `vectors` (`present` is not needed: see the module docstring)."""
        product = None
        for vector, factor in zip(vectors, self.factors):
            projected = torch.einsum("bd,rdo->bro", with_one(vector), factor)  # (B, rank, output)
            product = projected if product is None else product * projected
        return torch.einsum("r,bro->bo", self.fusion_weights[0], product) + self.fusion_bias


class TFN(nn.Module):
    """Tensor Fusion (Zadeh et al., EMNLP 2017): each vector goes through its own linear
    layer and ReLU to `projection` values (the paper's modality subnetworks; the outer
    product of three 768-wide vectors would hold 455 million values), then the outer product
    of the 1-appended projections, flattened (row-major, first modality slowest), is mapped
    linearly to `output_size`; an absent modality's projection is zero, so its extended
    vector is (0, ..., 0, 1). `rank` is unused."""

    def __init__(self, input_sizes: list[int], output_size: int, rank: int = 0, projection: int = 32) -> None:
        super().__init__()
        self.projections = nn.ModuleList(nn.Sequential(nn.Linear(size, projection), nn.ReLU()) for size in input_sizes)
        self.linear = nn.Linear((projection + 1) ** len(input_sizes), output_size)
        self.output_size = output_size

    def forward(self, vectors: list[torch.Tensor], present: Presence = None) -> torch.Tensor:
        """The fused vector (B, output_size); an absent modality's projection is zeroed."""
        projected = [project(vector) for project, vector in zip(self.projections, vectors)]
        if present is not None:  # an absent modality's projection is zero too (its bias would pass the ReLU)
            projected = [z if mask is None else z * mask.to(z.dtype).unsqueeze(-1) for z, mask in zip(projected, present)]
        return self.fuse(projected)

    def fuse(self, projected: list[torch.Tensor]) -> torch.Tensor:
        """The linear map of the outer product of the 1-appended `projected` vectors."""
        tensor = with_one(projected[0])
        for vector in projected[1:]:
            tensor = torch.einsum("bi,bj->bij", tensor, with_one(vector)).flatten(1)
        return self.linear(tensor)


class Concat(nn.Module):
    """The baseline: the vectors side by side, then a two-layer perceptron (hidden width
    2 x `output_size`, ReLU after each layer). With one layer, a label that needs both
    modalities together (an exclusive or) was not even fitted on the training rows within
    25 epochs; two layers learn it (tests/test_fusion.py). `rank` is unused."""

    def __init__(self, input_sizes: list[int], output_size: int, rank: int = 0) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(sum(input_sizes), 2 * output_size), nn.ReLU(),
                                    nn.Linear(2 * output_size, output_size), nn.ReLU())
        self.output_size = output_size

    def forward(self, vectors: list[torch.Tensor], present: Presence = None) -> torch.Tensor:
        """The perceptron over the concatenated `vectors` (an absent modality's vector is already zero)."""
        return self.layers(torch.cat(vectors, dim=-1))


class TextLedAttention(nn.Module):
    """Cross-modal attention led by the first modality (text, when the run has it), after
    TelME's fusion (Yun et al., NAACL 2024), where the non-verbal modalities shift the text
    representation. Each vector is projected to `output_size` and layer-normalised (p_m);
    the lead's projection queries all of them with multi-head attention (4 heads, or 1 when
    `output_size` is not a multiple of 4), rows lacking a non-lead modality not attending to
    it (a row lacking the lead attends to the others it has); a gate decides per
    dimension how far the attended context c shifts the lead:
    h = p_lead + sigmoid(W_g [p_lead; c]) * c, and the output is ReLU(W_o h). `rank` is unused."""

    def __init__(self, input_sizes: list[int], output_size: int, rank: int = 0) -> None:
        super().__init__()
        self.projections = nn.ModuleList(nn.Sequential(nn.Linear(size, output_size), nn.LayerNorm(output_size))
                                         for size in input_sizes)
        heads = 4 if output_size % 4 == 0 else 1
        self.attention = nn.MultiheadAttention(output_size, heads, batch_first=True)
        self.gate = nn.Linear(2 * output_size, output_size)
        self.output = nn.Linear(output_size, output_size)
        self.output_size = output_size

    def forward(self, vectors: list[torch.Tensor], present: Presence = None) -> torch.Tensor:
        """The lead's projection shifted by what it attends to among the modalities each row has."""
        tokens = torch.stack([project(vector) for project, vector in zip(self.projections, vectors)], dim=1)  # (B, M, D)
        lead = tokens[:, :1]
        context, _ = self.attention(lead, tokens, tokens, key_padding_mask=self.ignored_keys(tokens, present),
                                    need_weights=False)
        lead, context = lead[:, 0], context[:, 0]
        shift = torch.sigmoid(self.gate(torch.cat([lead, context], dim=-1))) * context
        return torch.relu(self.output(lead + shift))

    @staticmethod
    def ignored_keys(tokens: torch.Tensor, present: Presence) -> Optional[torch.Tensor]:
        """(B, M) True where a row lacks a modality, or None when every row has every
        modality. A row lacking its lead still queries with the lead's (constant) projection
        but attends to the other modalities it has; a row lacking all of them attends to the
        lead, so every row attends to something."""
        if present is None or all(p is None for p in present):
            return None
        ignored = torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        for index, rows in enumerate(present):
            if rows is not None:
                ignored[:, index] = ~rows.to(device=tokens.device, dtype=torch.bool)
        ignored[:, 0] &= ~ignored[:, 1:].all(dim=1)
        return ignored


FUSIONS: dict[str, type[nn.Module]] = {"lmf": LMF, "tfn": TFN, "concat": Concat, "attention": TextLedAttention}
"""`--fusion` name -> fusion class."""
