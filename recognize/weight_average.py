"""An exponential moving average of the weights that train (`--ema-decay`; Polyak and
Juditsky, 1992). After every optimiser step t (0-based) each averaged tensor moves towards the
weight by 1 - d_t, with d_t = min(D, (1 + t) / (10 + t)): the ramp of TensorFlow's
ExponentialMovingAverage with `num_updates`, so that the average forgets the starting weights
(a classification head's random ones) within the first few hundred steps, whatever D is.
Training goes on with the raw weights; dev, the best epoch and the saved weights are the
average's (`swapped_in`)."""

from contextlib import contextmanager
from typing import Iterator

import torch

RAMP_OFFSET = 10
"""d_t = min(D, (1 + t) / (RAMP_OFFSET + t)): the first step keeps 1/10 of the average."""


class WeightAverage:
    """The moving average of `model`'s parameters that train (as they are when it is made)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
        self.averages = {name: p.detach().clone() for name, p in self.parameters.items()}

    def rate(self) -> float:
        """The decay d_t of the next update."""
        return min(self.decay, (1 + self.updates) / (RAMP_OFFSET + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """Move every average towards its parameter's weight after an optimiser step."""
        weight = 1.0 - self.rate()
        for name, parameter in self.parameters.items():
            self.averages[name].lerp_(parameter.detach(), weight)
        self.updates += 1

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Within the block the model's parameters hold the averages; the raw weights return after it."""
        with torch.no_grad():
            raw = {name: p.detach().clone() for name, p in self.parameters.items()}
            for name, parameter in self.parameters.items():
                parameter.copy_(self.averages[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, parameter in self.parameters.items():
                    parameter.copy_(raw[name])

    def state(self) -> tuple[dict[str, torch.Tensor], int]:
        """The averages (for safetensors) and the number of updates so far (for JSON)."""
        return dict(self.averages), self.updates

    def load(self, averages: dict[str, torch.Tensor], updates: int) -> None:
        """Restore what `state` gave; the tensors must be the same names and shapes."""
        if averages.keys() != self.averages.keys():
            missing, extra = sorted(self.averages.keys() - averages.keys()), sorted(averages.keys() - self.averages.keys())
            raise ValueError(f"averaged weights differ: missing {missing[:3]}, unexpected {extra[:3]}")
        with torch.no_grad():
            for name, average in averages.items():
                self.averages[name].copy_(average)
        self.updates = int(updates)
