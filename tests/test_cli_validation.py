"""Every CLI error case: a bad option is one ``error:`` line on stderr and exit code 2,
before any training starts (issue 9, "The CLI"); the ETA and the plots."""
from __future__ import annotations

import argparse

import pytest

from lightgrad.cli import main
from lightgrad.train import common


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """Exit code and stderr of ``lightgrad ARGV`` (argparse errors raise SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


BAD_OPTIONS = {
    "train gpt": [
        ("--eval-interval", "0"), ("--eval-interval", "-5"), ("--batch-size", "0"),
        ("--max-iters", "0"), ("--max-iters", "-10"), ("--lr", "-0.001"), ("--lr", "0"),
        ("--lr", "nan"), ("--min-lr", "-1"), ("--warmup-iters", "-1"),
        ("--weight-decay", "-0.1"), ("--grad-clip", "-1"), ("--dropout", "1.0"),
        ("--dropout", "-0.1"), ("--eval-iters", "0"), ("--max-chars", "0"),
        ("--block-size", "0"), ("--bpe-vocab-size", "0"), ("--seed", "-1"),
        ("--sample-chars", "-1"), ("--batch-size", "two"), ("--lr", "inf")],
    "train mlp": [
        ("--epochs", "0"), ("--batch-size", "0"), ("--lr", "-1"), ("--momentum", "-0.5"),
        ("--weight-decay", "-1"), ("--dropout", "1.5"), ("--seed", "-3"),
        ("--train-split", "0"), ("--hidden", "0")],
    "train cnn": [
        ("--epochs", "-1"), ("--batch-size", "-8"), ("--lr", "0"), ("--channels", "4,-1"),
        ("--dropout", "1")],
    "sample": [
        ("-n", "0"), ("--num-tokens", "-5"), ("--temperature", "-1"), ("--top-k", "0"),
        ("--top-p", "0"), ("--top-p", "1.5"), ("--seed", "-1")],
}
CASES = [(cmd, opt, value) for cmd, options in BAD_OPTIONS.items() for opt, value in options]


@pytest.mark.parametrize("cmd, option, value", CASES)
def test_bad_numeric_option_is_one_line_and_exit_2(cmd, option, value, capsys, tmp_path):
    argv = cmd.split() + [option, value, "--out" if cmd != "sample" else "--checkpoint",
                          str(tmp_path / "run")]
    code, err = run_cli(argv, capsys)
    assert code == 2
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and option in errors[0] and value in errors[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing ran


@pytest.mark.parametrize("cmd", ["train gpt", "train mlp", "train cnn"])
def test_out_that_is_a_file(cmd, capsys, tmp_path):
    out = tmp_path / "file.txt"
    out.write_text("x")
    code, err = run_cli(cmd.split() + ["--out", str(out)], capsys)
    assert code == 2 and "is a file" in err and "Traceback" not in err


def test_gpt_data_directory_says_directory(capsys, tmp_path):
    code, err = run_cli(["train", "gpt", "--data", str(tmp_path), "--out",
                         str(tmp_path / "run")], capsys)
    assert code == 2 and "is a directory" in err and "does not exist" not in err


def test_gpt_data_missing_says_does_not_exist(capsys, tmp_path):
    code, err = run_cli(["train", "gpt", "--data", str(tmp_path / "nope.txt"), "--out",
                         str(tmp_path / "run")], capsys)
    assert code == 2 and "does not exist" in err


def test_classifier_data_file_says_file(capsys, tmp_path):
    data = tmp_path / "images.idx"
    data.write_bytes(b"\0")
    code, err = run_cli(["train", "mlp", "--data", str(data), "--out", str(tmp_path / "r")],
                        capsys)
    assert code == 2 and "is a file" in err


def test_sample_missing_checkpoint(capsys, tmp_path):
    code, err = run_cli(["sample", "--checkpoint", str(tmp_path / "none")], capsys)
    assert code == 2 and "no checkpoint" in err


def test_valid_values_parse():
    from lightgrad.cli import build_parser
    args = build_parser().parse_args(
        ["train", "gpt", "--grad-clip", "0", "--dropout", "0", "--warmup-iters", "0",
         "--sample-chars", "0", "--min-lr", "0", "--seed", "0"])
    assert args.grad_clip == 0 and args.dropout == 0 and args.sample_chars == 0
    args = build_parser().parse_args(["sample", "--temperature", "0", "--top-p", "1"])
    assert args.temperature == 0 and args.top_p == 1


def test_validators():
    assert common.positive(int)("3") == 3
    assert common.non_negative(float)("0") == 0.0
    for parse, text in [(common.positive(int), "0"), (common.positive(float), "-inf"),
                        (common.non_negative(int), "-1"), (common.probability, "1"),
                        (common.top_p_mass, "0"), (common.positive(int), "1.5")]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def _progress(total: int) -> common.Progress:
    bar = common.Progress(total, desc="t")
    if bar.bar is not None:
        bar.bar.close()
        bar.bar = None
    return bar


def test_eta_follows_recent_speed():
    bar = _progress(1000)
    t = bar.start
    for _ in range(100):  # 100 slow steps of 1 s
        t += 1.0
        bar.tick(now=t)
    for _ in range(100):  # then 100 fast steps of 0.01 s
        t += 0.01
        bar.tick(now=t)
    # the average since the start would say ~0.5 s/step, 400 s; the recent speed ~8 s
    assert bar.eta() < 0.02 * 800


def test_eta_constant_speed():
    bar = _progress(10)
    for i in range(1, 4):
        bar.tick(now=bar.start + i)
    assert bar.eta() == pytest.approx(7.0)


def test_plot_layers_units_and_twin_axis(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    line = common.save_curves(
        tmp_path / "c.png", {"test loss": [(1, 2.0), (2, 1.0)]}, "epoch",
        "cross-entropy loss (nats/image)", "t", noisy={"per step": [(0.5, 3.0), (1, 2.5)]},
        twin={"test accuracy": [(1, 50.0), (2, 90.0)]}, twin_label="test accuracy (%)")
    assert "written" in line and (tmp_path / "c.png").is_file()
    fig = figures[-1]
    ax, right = fig.axes
    noisy, = [ln for ln in ax.lines if ln.get_label() == "per step"]
    evaluated, = [ln for ln in ax.lines if ln.get_label() == "test loss"]
    assert noisy.get_alpha() < 0.5 and noisy.get_zorder() < evaluated.get_zorder()
    assert "(" in ax.get_ylabel() and right.get_ylabel() == "test accuracy (%)"
    assert [ln.get_label() for ln in right.lines] == ["test accuracy"]
    assert all(ln.get_label() != "test accuracy" for ln in ax.lines)
    plt.close(fig)
