"""Layer-wise learning-rate decay (Clark et al., 2020, ELECTRA; Bao et al., 2022, BEiT): a
pretrained encoder's top layer trains at the full learning rate and each layer below it at
`decay` times the rate of the one above, the embeddings lowest, so that the general features
of the lower layers move least.

A parameter's layer is read from its name, as Hugging Face models name their stacks:
`....layer.3....` (BERT, RoBERTa, MPNet, ViViT), `....layers.3....` (Wav2Vec2, Llama),
`....h.3....` (GPT-2), `....block.3....` (T5). Names before the stack (embeddings, patch
and convolutional feature extractors, their projection) count as depth 0; a name outside
the stack and after it (a pooler, a final norm) as the top layer's. An encoder whose names
show no stack has every parameter at scale 1."""

import re

LAYER_INDEX = re.compile(r"\.(?:layer|layers|h|block|blocks)\.(\d+)\.")
BELOW_THE_STACK = re.compile(r"embed|feature_extractor|feature_projection|patch|wte|wpe")


def encoder_of(name: str) -> str:
    """The encoder a parameter of the model belongs to: `encoders.T.x.y` -> `encoders.T`."""
    return ".".join(name.split(".")[:2])


def layer_scales(names: list[str], decay: float) -> dict[str, float]:
    """Parameter name -> the factor its learning rate is multiplied by: decay ** (L - depth)
    for an encoder of L layers (depth 1 ... L for the layers, 0 below them, L after them)."""
    indices = {name: int(found.group(1)) for name in names if (found := LAYER_INDEX.search(name))}
    layers: dict[str, int] = {}
    for name, index in indices.items():
        layers[encoder_of(name)] = max(layers.get(encoder_of(name), 0), index + 1)
    scales = {}
    for name in names:
        top = layers.get(encoder_of(name))
        if top is None:
            scales[name] = 1.0
            continue
        depth = indices[name] + 1 if name in indices else 0 if BELOW_THE_STACK.search(name) else top
        scales[name] = decay ** (top - depth)
    return scales
