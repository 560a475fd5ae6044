"""The ``lightgrad`` command: ``info``, ``demo``, ``train gpt``, ``sample``.

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
    print("backends: cpu (NumPy)" + ("" if "cuda" not in available_devices() else ", cuda"))
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


def _add_train_commands(sub: argparse._SubParsersAction) -> None:
    from lightgrad.train.classifier import add_arguments as add_classifier_arguments
    from lightgrad.train.gpt import add_sample_arguments, add_train_arguments
    train = sub.add_parser("train", help="train a model (mlp, cnn, gpt)")
    models = train.add_subparsers(dest="model", required=True)
    descriptions = {"mlp": "train an MLP classifier on digits (default) or MNIST IDX files",
                    "cnn": "train a LeNet-style CNN on digits (default) or MNIST IDX files"}
    for name, text in descriptions.items():
        classifier = models.add_parser(name, help=text, description=text)
        add_classifier_arguments(classifier, name)
        classifier.set_defaults(func=_train_classifier)
    gpt = models.add_parser("gpt", help="train a GPT on a text file (default: built-in corpus)")
    add_train_arguments(gpt)
    gpt.set_defaults(func=_train_gpt)
    sample = sub.add_parser("sample", help="generate text from a trained GPT checkpoint")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightgrad`` console command."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"lightgrad: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
