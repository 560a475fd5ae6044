"""``ModelConfig``: what every model's dataclass configuration shares — named presets and
a round trip through a plain dict (checkpoints store configs as JSON).

>>> from lightgrad.models.gpt import GPTConfig
>>> c = GPTConfig.preset("baby", vocab_size=65)
>>> GPTConfig.from_dict({**c.to_dict(), "unknown_key": 1}) == c
True
"""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, ClassVar


class ModelConfig:
    """Mixed into a ``@dataclass`` config; the subclass sets ``PRESETS`` (name -> fields)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> Any:
        """A named configuration (see ``PRESETS``) with some fields replaced."""
        if name not in cls.PRESETS:
            raise ValueError(f"{cls.__name__}: unknown preset {name!r}; choose one of "
                             f"{', '.join(cls.PRESETS)}")
        return cls(**{**cls.PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        """A config from ``to_dict``'s output; unknown keys (newer versions) are ignored."""
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in values.items() if k in known})
