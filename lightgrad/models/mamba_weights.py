"""Loading and saving Mamba checkpoints in Hugging Face's layout.

Two ``config.json`` dialects name the same hyper-parameters: ``transformers``'
``MambaConfig`` (``hidden_size``, ``num_hidden_layers``, ``state_size``...; e.g.
``state-spaces/mamba-130m-hf``) and the original ``state-spaces/mamba-*`` repositories
(``d_model``, ``n_layer``, ``ssm_cfg``, ``pad_vocab_size_multiple``). The weight names are
those of ``MambaForCausalLM`` (``backbone.layers.0.mixer.in_proj.weight``); the original
checkpoints call the embedding ``backbone.embedding`` instead of ``backbone.embeddings``.
Weights come from ``model.safetensors`` or a sharded ``model.safetensors.index.json``;
pickle files (``pytorch_model.bin``) are refused with the command that converts them.

>>> mamba_config_from_json({"d_model": 768, "n_layer": 24, "vocab_size": 50277,
...                         "ssm_cfg": {}, "pad_vocab_size_multiple": 8}).padded_vocab_size
50280
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgrad as lg

# transformers' MambaConfig field -> MambaConfig field
_HF_NAMES = {"hidden_size": "d_model", "num_hidden_layers": "n_layer",
             "vocab_size": "vocab_size", "state_size": "d_state", "expand": "expand",
             "conv_kernel": "d_conv", "time_step_rank": "dt_rank",
             "use_conv_bias": "conv_bias", "use_bias": "bias",
             "layer_norm_epsilon": "norm_epsilon", "time_step_min": "dt_min",
             "time_step_max": "dt_max", "time_step_floor": "dt_init_floor",
             "time_step_scale": "dt_scale", "time_step_init_scheme": "dt_init"}
_SSM_CFG = ("d_state", "d_conv", "expand", "dt_rank", "dt_min", "dt_max", "dt_init",
            "dt_scale", "dt_init_floor", "conv_bias", "bias")
_PICKLES = ("pytorch_model.bin", "model.pt", "model.bin", "pytorch_model.bin.index.json")


def mamba_config_from_json(values: dict[str, Any]) -> Any:
    """A ``MambaConfig`` from a ``config.json`` in either dialect (or lightgrad's own)."""
    from lightgrad.models.mamba import MambaConfig
    model_type = values.get("model_type", "mamba")
    if model_type != "mamba":
        raise ValueError(f"from_pretrained: config.json is for model_type {model_type!r}, "
                         "not 'mamba'")
    if "hidden_size" in values:  # transformers' names
        out = {ours: values[theirs] for theirs, ours in _HF_NAMES.items() if theirs in values}
        if values.get("hidden_act", "silu") != "silu":
            raise ValueError(f"from_pretrained: hidden_act {values['hidden_act']!r} is not "
                             "supported (Mamba uses 'silu')")
        inner = values.get("intermediate_size")
        if inner is not None and inner != out.get("expand", 2) * out["d_model"]:
            raise ValueError(f"from_pretrained: intermediate_size {inner} is not expand * "
                             f"hidden_size = {out.get('expand', 2) * out['d_model']}")
        if values.get("tie_word_embeddings", True) is False:
            raise ValueError("from_pretrained: untied lm_head (tie_word_embeddings=false) "
                             "is not supported")
    elif "d_model" in values:  # state-spaces' names
        ssm = dict(values.get("ssm_cfg") or {})
        if ssm.pop("layer", "Mamba1") != "Mamba1":
            raise ValueError("from_pretrained: only Mamba (v1) layers are supported, the "
                             f"checkpoint's ssm_cfg says {values['ssm_cfg']}")
        if not values.get("rms_norm", True) or values.get("d_intermediate", 0):
            raise ValueError("from_pretrained: only RMSNorm blocks without an MLP "
                             "(rms_norm=true, d_intermediate=0) are supported")
        out = {k: values[k] for k in ("d_model", "n_layer", "vocab_size",
                                      "pad_vocab_size_multiple", "norm_epsilon")
               if k in values}
        out.setdefault("pad_vocab_size_multiple", 8)  # mamba_ssm's default
        out.update({k: v for k, v in ssm.items() if k in _SSM_CFG})
    else:
        raise ValueError("from_pretrained: config.json has neither hidden_size "
                         "(transformers) nor d_model (state-spaces): not a Mamba config")
    try:
        return MambaConfig(**out)
    except TypeError as err:
        raise ValueError(f"from_pretrained: config.json lacks a Mamba field ({err})") from None


def _weight_files(path: Path) -> list[Path]:
    single, index = path / "model.safetensors", path / "model.safetensors.index.json"
    if single.is_file():
        return [single]
    if index.is_file():
        weight_map = json.loads(index.read_text()).get("weight_map", {})
        return [path / name for name in sorted(set(weight_map.values()))]
    pickles = [p for p in (path / name for name in _PICKLES) if p.is_file()]
    if pickles:
        raise ValueError(
            f"from_pretrained: {path} holds only {pickles[0].name}, a pickle checkpoint; "
            "lightgrad never unpickles files. Convert it once where PyTorch is installed: "
            f"lightgrad convert {pickles[0]} {single}")
    raise FileNotFoundError(f"from_pretrained: {path} holds neither model.safetensors nor "
                            "model.safetensors.index.json")


def _our_name(key: str) -> str:
    if not key.startswith(("backbone.", "lm_head.")):
        key = "backbone." + key  # MambaModel, saved without the LM head
    return key.replace("backbone.embedding.", "backbone.embeddings.")


def load_mamba(cls: Any, path: Path) -> Any:
    """Build ``cls`` (Mamba) from a local Hugging Face directory."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"from_pretrained: {config_file} not found; the directory "
                                "must hold config.json and model.safetensors")
    config = mamba_config_from_json(json.loads(config_file.read_text()))
    state: dict[str, lg.Tensor] = {}
    for file in _weight_files(path):
        # lg.load: a flat dict for transformers' files; lightgrad convert's output (from
        # pytorch_model.bin) stores tied weights once and gives both names back
        tensors = lg.io.load(file, map_location="cpu")
        if not isinstance(tensors, dict):
            raise ValueError(f"from_pretrained: {file} does not hold a dict of tensors")
        for key, value in tensors.items():
            state[_our_name(key)] = value.float() if value.dtype.is_floating_point else value
    embedding = state.get("backbone.embeddings.weight", state.get("lm_head.weight"))
    if embedding is None:
        raise ValueError(f"from_pretrained: {path} has no backbone.embeddings.weight")
    state["backbone.embeddings.weight"] = embedding
    if tuple(embedding.shape)[0] != config.padded_vocab_size:
        raise ValueError(f"from_pretrained: the embedding has {embedding.shape[0]} rows but "
                         f"config.json says a vocabulary of {config.padded_vocab_size}")
    state["lm_head.weight"] = embedding  # tied; a stored copy of the head is the same
    model = cls(config)
    model.load_state_dict(state, strict=True)
    return model


def save_mamba(model: Any, path: Path) -> None:
    """Write ``config.json`` (transformers' names) and ``model.safetensors``, readable by
    ``Mamba.from_pretrained`` and by ``transformers.MambaForCausalLM.from_pretrained``."""
    c = model.config
    values = {theirs: getattr(c, ours) for theirs, ours in _HF_NAMES.items()}
    values.update(model_type="mamba", architectures=["MambaForCausalLM"],
                  vocab_size=c.padded_vocab_size, intermediate_size=c.d_inner,
                  hidden_act="silu", tie_word_embeddings=True, residual_in_fp32=True,
                  # an init-time option; transformers would rescale the loaded out_proj
                  rescale_prenorm_residual=False)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(values, indent=2))
    lg.io.save_file({k: v for k, v in model.state_dict().items() if k != "lm_head.weight"},
                    path / "model.safetensors", metadata={"format": "pt"})
