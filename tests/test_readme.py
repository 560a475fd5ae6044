"""The README's promises: its example runs and learns, its commands exist."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import lightgrad as lg

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_example_learns(capsys: pytest.CaptureFixture[str]) -> None:
    lg.manual_seed(0)
    (example,) = [b for b in _python_blocks() if "w1.grad" in b]
    scope: dict = {}
    exec(compile(example, str(README), "exec"), scope)
    printed = capsys.readouterr().out
    final = float(re.search(r"loss ([0-9.]+)", printed).group(1))
    assert final < 0.2, printed


def test_readme_jit_example_trains_and_matches_eager() -> None:
    (example,) = [b for b in _python_blocks() if "@lg.jit" in b]
    runs = []
    for jit in (True, False):
        lg.manual_seed(0)
        scope: dict = {}
        source = example if jit else example.replace("@lg.jit", "")
        exec(compile(source, str(README), "exec"), scope)
        runs.append(scope["losses"])
    jitted, eager = runs
    assert jitted[-1] < 0.5 * jitted[0], jitted
    assert jitted == pytest.approx(eager, rel=1e-5)


def test_readme_commands_are_real_subcommands() -> None:
    from lightgrad.cli import build_parser
    shell = "\n".join(re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S))
    commands = set(re.findall(r"(?:^|&& )lightgrad (\w+)", shell, flags=re.M))
    assert "train" in commands  # the main job: lightgrad train gpt
    sub = build_parser()._subparsers._group_actions[0].choices
    assert commands <= set(sub), commands - set(sub)


def test_demo_command_prints_falling_losses(capsys: pytest.CaptureFixture[str]) -> None:
    from lightgrad.demo import train_scalar_mlp, train_tensor_mlp
    lines: list[str] = []
    train_scalar_mlp(steps=12, n=30, log=lines.append)
    train_tensor_mlp(steps=60, n=200, log=lines.append)
    losses = [float(m) for m in re.findall(r"loss ([0-9.]+)", "\n".join(lines))]
    scalar, tensor = losses[:3], losses[3:]
    assert scalar[-1] < scalar[0] and tensor[-1] < tensor[0] * 0.7, lines
