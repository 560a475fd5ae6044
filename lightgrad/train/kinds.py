"""The language models ``lightgrad train <model>`` and ``lightgrad sample`` know.

The training loop (``lightgrad.train.gpt``) is the same for every kind; a ``ModelKind``
says what differs: the model and config classes, the presets offered (those that leave
the vocabulary to the tokenizer), the default context length and how a run describes the
model. A checkpoint records its kind (``"kind"``); one without it is a GPT.

>>> KINDS["mamba"].presets
('baby', 'mini')
>>> KINDS["gpt"].context("baby"), KINDS["mamba"].context("baby")
(64, 64)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class ModelKind:
    """What ``train`` needs to know about one model family."""

    name: str  # the subcommand: ``lightgrad train <name>``
    title: str  # for plots and messages
    model_class: Callable[[], Any]  # () -> the class (imported lazily)
    config_class: Callable[[], Any]
    preset_table: Callable[[], dict[str, dict[str, Any]]]
    describe: Callable[[Any], str]  # config -> "4 layers, 4 heads, width 128"
    has_dropout: bool = False

    @property
    def presets(self) -> tuple[str, ...]:
        """The presets to train from scratch: those whose vocabulary the tokenizer sets."""
        return tuple(n for n, p in self.preset_table().items() if "vocab_size" not in p)

    def context(self, preset: str) -> int:
        """The default context length (block size) of ``preset``: GPT's own; a Mamba has
        no limit and trains on the context of the GPT preset of the same name."""
        from lightgrad.models.gpt import PRESETS
        return PRESETS[preset]["block_size"]

    def config(self, preset: str, **overrides: Any) -> Any:
        """The preset's config with some fields replaced (unknown ones ignored)."""
        cls = self.config_class()
        known = set(cls.__dataclass_fields__)
        return cls.preset(preset, **{k: v for k, v in overrides.items() if k in known})


def _gpt() -> Any:
    from lightgrad.models.gpt import GPT
    return GPT


def _gpt_config() -> Any:
    from lightgrad.models.gpt import GPTConfig
    return GPTConfig


def _gpt_presets() -> dict[str, dict[str, Any]]:
    from lightgrad.models.gpt import PRESETS
    return PRESETS


def _mamba() -> Any:
    from lightgrad.models.mamba import Mamba
    return Mamba


def _mamba_config() -> Any:
    from lightgrad.models.mamba import MambaConfig
    return MambaConfig


def _mamba_presets() -> dict[str, dict[str, Any]]:
    from lightgrad.models.mamba import PRESETS
    return PRESETS


KINDS: dict[str, ModelKind] = {
    "gpt": ModelKind("gpt", "GPT", _gpt, _gpt_config, _gpt_presets,
                     lambda c: f"{c.n_layer} layers, {c.n_head} heads, width {c.n_embd}",
                     has_dropout=True),
    "mamba": ModelKind("mamba", "Mamba", _mamba, _mamba_config, _mamba_presets,
                       lambda c: f"{c.n_layer} layers, width {c.d_model}, state "
                                 f"{c.d_state}"),
}


def kind_named(name: str, where: str) -> ModelKind:
    """The kind called ``name``; a ValueError naming the known ones otherwise."""
    if name not in KINDS:
        raise ValueError(f"{where}: unknown model kind {name!r}; expected one of "
                         f"{', '.join(KINDS)}")
    return KINDS[name]
