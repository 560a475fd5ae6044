"""The ``lightgrad`` command: ``info``, ``demo``, ``train gpt``, ``sample``, ``convert``,
``onnx``.

>>> from lightgrad.cli import main
>>> main(["info"])  # doctest: +ELLIPSIS
lightgrad ...
"""
from __future__ import annotations

import argparse
import platform
import sys
from typing import Sequence


def _info(args: argparse.Namespace) -> int:
    import numpy as np

    import lightgrad as lg
    from lightgrad.backends import available_devices
    print(f"lightgrad {lg.__version__}")
    print(f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"devices: {', '.join(available_devices())}")
    from lightgrad.backends import native
    print("backends: cpu" + ("" if "cuda" not in available_devices() else ", cuda"))
    print(f"cpu kernels: {native.describe()}")
    print(f"cpu threads: {lg.get_num_threads()}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from lightgrad.demo import run
    run()
    return 0


def _train_gpt(args: argparse.Namespace) -> int:
    from lightgrad.train.gpt import train
    train(args)
    return 0


def _sample(args: argparse.Namespace) -> int:
    from lightgrad.train.gpt import sample
    sample(args)
    return 0


def _train_classifier(args: argparse.Namespace) -> int:
    from lightgrad.train.classifier import train
    try:
        train(args)
    except ImportError as err:  # digits without scikit-learn
        print(f"lightgrad: error: {err}", file=sys.stderr)
        return 2
    return 0


def _convert(args: argparse.Namespace) -> int:
    from lightgrad.convert import TorchMissingError, convert
    try:
        stats = convert(args.input, args.output)
    except TorchMissingError as err:
        print(f"lightgrad: error: {err}", file=sys.stderr)
        return 2
    size = stats["bytes"]
    shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"
    print(f"converted {stats['tensors']} tensors ({shown}) from {args.input} to {args.output}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from lightgrad.distributed.launch import main as launch
    return launch(args)


def _add_train_commands(sub: argparse._SubParsersAction) -> None:
    from lightgrad.train.classifier import add_arguments as add_classifier_arguments
    from lightgrad.train.gpt import add_sample_arguments, add_train_arguments
    train = sub.add_parser("train", help="train a model (mlp, cnn, gpt, mamba)")
    models = train.add_subparsers(dest="model", required=True)
    descriptions = {"mlp": "train an MLP classifier on digits (default) or MNIST IDX files",
                    "cnn": "train a LeNet-style CNN on digits (default) or MNIST IDX files"}
    for name, text in descriptions.items():
        classifier = models.add_parser(name, help=text, description=text)
        add_classifier_arguments(classifier, name)
        classifier.set_defaults(func=_train_classifier)
    for name, title in (("gpt", "GPT"), ("mamba", "Mamba")):  # one training loop for both
        lm = models.add_parser(name, help=f"train a {title} on a text file (default: built-in "
                                          "corpus)")
        add_train_arguments(lm, name)
        lm.set_defaults(func=_train_gpt)
    sample = sub.add_parser("sample", help="generate text from a trained GPT or Mamba "
                                           "checkpoint")
    add_sample_arguments(sample)
    sample.set_defaults(func=_sample)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="lightgrad", description="lightgrad command line")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="version, devices found and backends")
    info.set_defaults(func=_info)
    demo = sub.add_parser("demo", help="train the scalar MLP and a tensor MLP on a toy set")
    demo.set_defaults(func=_demo)
    _add_train_commands(sub)
    convert = sub.add_parser("convert", help="convert a PyTorch checkpoint (.pt) to a lightgrad "
                             "safetensors checkpoint (needs PyTorch)")
    convert.add_argument("input", help="a file written by torch.save")
    convert.add_argument("output", help="the .safetensors file to write")
    convert.set_defaults(func=_convert)
    run = sub.add_parser("run", help="run a script on several processes (MPI): "
                         "lightgrad run -n 2 -- script.py args")
    from lightgrad.distributed.launch import add_arguments as _add_run_arguments
    _add_run_arguments(run)
    run.set_defaults(func=_run)
    from lightgrad.onnx.cli import add_commands as _add_onnx_commands
    _add_onnx_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightgrad`` console command."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to start again on N ranks
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"lightgrad: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
