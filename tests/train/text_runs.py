"""What the ``train gpt`` and ``train mamba`` tests share: a small text (conftest.py writes
it to the ``data_file`` fixture), the options of a tiny run and the history a checkpoint
records."""
from __future__ import annotations

import json

import lightgrad as lg

TEXT = "".join(f"line {i}: the cat sat on the mat, and the dog sat on the log.\n"
               for i in range(40))
SMALL = ["--eval-interval", "3", "--eval-iters", "2", "--batch-size", "4", "--block-size", "16",
         "--sample-chars", "20"]


def history(out) -> dict:
    return json.loads(lg.load(out / "ckpt.safetensors")["history"])
