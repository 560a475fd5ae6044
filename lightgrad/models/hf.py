"""Loading Hugging Face GPT-2 checkpoints (``config.json`` + ``model.safetensors``).

Hugging Face's GPT-2 stores its projections as ``Conv1D`` modules whose weight is
(in_features, out_features); lightgrad uses ``nn.Linear`` (out, in), so those four
weights are transposed on the way in. Keys may carry a ``transformer.`` prefix or not.

>>> from pathlib import Path
>>> hf_config_to_lightgrad({"n_layer": 2, "n_head": 2, "n_embd": 8, "n_positions": 16,
...                         "vocab_size": 50}).block_size
16
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgrad as lg

# Hugging Face's activation names -> nn.GELU's ``approximate``
_GELU = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# the causal-mask buffers of older checkpoints (the dot keeps "c_attn.bias" out of it)
_SKIPPED_SUFFIXES = (".attn.bias", ".attn.masked_bias")


def hf_config_to_lightgrad(values: dict[str, Any]) -> Any:
    """A ``GPTConfig`` from the fields of a Hugging Face GPT-2 ``config.json``."""
    from lightgrad.models.gpt import GPTConfig
    activation = values.get("activation_function", "gelu_new")
    if activation not in _GELU:
        raise ValueError(f"from_pretrained: unsupported activation_function {activation!r}; "
                         f"expected one of {', '.join(_GELU)}")
    n_inner = values.get("n_inner")
    if n_inner is not None and n_inner != 4 * values.get("n_embd", 0):
        raise ValueError(f"from_pretrained: n_inner={n_inner} is not supported (lightgrad's "
                         "MLP is 4 * n_embd wide)")
    try:
        return GPTConfig(
            vocab_size=values["vocab_size"],
            block_size=values.get("n_positions", values.get("n_ctx", 1024)),
            n_layer=values["n_layer"], n_head=values["n_head"], n_embd=values["n_embd"],
            dropout=0.0, bias=True,
            layer_norm_epsilon=values.get("layer_norm_epsilon", 1e-5),
            gelu_approximate=_GELU[activation])
    except KeyError as err:
        raise ValueError(f"from_pretrained: config.json lacks the GPT-2 field {err}") from None


def load_gpt2(cls: Any, path: Path) -> Any:
    """Build ``cls`` (GPT) from a local Hugging Face GPT-2 directory."""
    config_file, weights_file = path / "config.json", path / "model.safetensors"
    for f in (config_file, weights_file):
        if not f.is_file():
            raise FileNotFoundError(
                f"from_pretrained: {f} not found; the directory must hold config.json and "
                "model.safetensors (as written by transformers' save_pretrained)")
    values = json.loads(config_file.read_text())
    # lightgrad's own save_pretrained writes GPTConfig's fields (block_size); HF writes
    # n_positions, and its Conv1D weights need transposing
    from_hf = "block_size" not in values
    if from_hf:
        config = hf_config_to_lightgrad(values)
    else:  # written by lightgrad's own save_pretrained
        from lightgrad.models.gpt import GPTConfig
        config = GPTConfig.from_dict(values)
    model = cls(config)
    tensors = lg.io.load_file(weights_file)
    state: dict[str, lg.Tensor] = {}
    for key, value in tensors.items():
        if key.endswith(_SKIPPED_SUFFIXES):
            continue
        name = key if key.startswith(("transformer.", "lm_head.")) else "transformer." + key
        if from_hf and name.endswith(_CONV1D):
            value = value.t().contiguous()
        state[name] = value
    state.setdefault("lm_head.weight", state.get("transformer.wte.weight"))
    model.load_state_dict(state, strict=True)
    return model
