"""Fusion networks: the pooled vectors of several modalities, in the model's modality order,
-> one vector of `output_size` for the classification head. `FUSIONS` maps each `--fusion`
name to its class; each takes (input_sizes, output_size, rank).

A modality missing from a row arrives as a zero vector (see `classifier.py`). In LMF and
TFN its 1-appended vector is then (0, ..., 0, 1): the modality contributes only its
constant factor row, the same for every row without it, so the others decide.
"""

import torch
from torch import nn


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

    def forward(self, vectors: list[torch.Tensor]) -> torch.Tensor:
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
    linearly to `output_size`. `rank` is unused."""

    def __init__(self, input_sizes: list[int], output_size: int, rank: int = 0, projection: int = 32) -> None:
        super().__init__()
        self.projections = nn.ModuleList(nn.Sequential(nn.Linear(size, projection), nn.ReLU()) for size in input_sizes)
        self.linear = nn.Linear((projection + 1) ** len(input_sizes), output_size)
        self.output_size = output_size

    def forward(self, vectors: list[torch.Tensor]) -> torch.Tensor:
        return self.fuse([project(vector) for project, vector in zip(self.projections, vectors)])

    def fuse(self, projected: list[torch.Tensor]) -> torch.Tensor:
        """The linear map of the outer product of the 1-appended `projected` vectors."""
        tensor = with_one(projected[0])
        for vector in projected[1:]:
            tensor = torch.einsum("bi,bj->bij", tensor, with_one(vector)).flatten(1)
        return self.linear(tensor)


class Concat(nn.Module):
    """The baseline: the vectors side by side, then a linear layer and ReLU to `output_size`.
    `rank` is unused."""

    def __init__(self, input_sizes: list[int], output_size: int, rank: int = 0) -> None:
        super().__init__()
        self.linear = nn.Linear(sum(input_sizes), output_size)
        self.output_size = output_size

    def forward(self, vectors: list[torch.Tensor]) -> torch.Tensor:
        return torch.relu(self.linear(torch.cat(vectors, dim=-1)))


FUSIONS: dict[str, type[nn.Module]] = {"lmf": LMF, "tfn": TFN, "concat": Concat}
"""`--fusion` name -> fusion class."""
