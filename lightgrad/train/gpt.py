"""``lightgrad train gpt|mamba`` and ``lightgrad sample``: train a language model on a text
file and sample it.

One loop trains every kind of model (``lightgrad.train.kinds``: GPT, Mamba). The run
directory holds ``ckpt.safetensors`` (model, optimizer, config, progress),
``tokenizer/`` and ``loss.png``. Batches are drawn from a generator seeded by
``(seed, iteration)``, so a resumed run sees exactly the batches an uninterrupted run would.
With ``--device cuda`` the model is built on the CPU (the same initial weights as a CPU
run), moved to the GPU, and each batch follows it there; checkpoints always hold CPU
tensors, so a run saved on one device resumes or samples on any other.

>>> from lightgrad.train.gpt import default_corpus
>>> len(default_corpus(20_000)) >= 20_000
True
"""
from __future__ import annotations

import argparse
import json
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import lightgrad as lg
from lightgrad.models.tokenizer import BPETokenizer, CharTokenizer
from lightgrad.train.common import (
    add_device_argument, check_out_dir, default_device, model_device, non_negative, positive,
    probability, resolve_device, save_curves, top_p_mass, warmup_cosine_lr,
)
from lightgrad.train.kinds import ModelKind, kind_named
from lightgrad.train.parallel import DataParallel, add_nproc_argument, relaunch

CHECKPOINT = "ckpt.safetensors"


# ----------------------------------------------------------------------------- data


def default_corpus(max_chars: int = 1_000_000) -> str:
    """Text that exists on every machine: the Python standard library's own source files
    (in sorted order, so the same Python version gives the same corpus)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    total = 0
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        text = text.encode("ascii", "ignore").decode("ascii")  # the ASCII characters
        parts.append(text)
        total += len(text)
        if total >= max_chars:
            break
    if total == 0:
        raise RuntimeError(f"train gpt: found no Python sources under {root} for the built-in "
                           "corpus; pass --data FILE")
    return "".join(parts)[:max_chars]


def read_text(path: Path, cmd: str = "train gpt") -> str:
    """The UTF-8 text of ``path``; clear errors (naming ``cmd``) for missing, empty and
    binary files."""
    if path.is_dir():
        raise ValueError(f"{cmd}: --data {path} is a directory; expected a UTF-8 text "
                         "file")
    if not path.is_file():
        raise FileNotFoundError(f"{cmd}: data file {path} does not exist")
    raw = path.read_bytes()
    if not raw.strip():
        raise ValueError(f"{cmd}: data file {path} is empty")
    if b"\x00" in raw[:65536]:
        raise ValueError(f"{cmd}: data file {path} looks binary (it contains NUL bytes); "
                         "expected a UTF-8 text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{cmd}: data file {path} is not UTF-8 text ({err})") from None


def build_tokenizer(kind: str, text: str, vocab_size: int) -> Any:
    if kind == "char":
        return CharTokenizer(text)
    if kind == "bpe":
        return BPETokenizer().train(text, vocab_size)
    raise ValueError(f"train gpt: unknown tokenizer {kind!r}; use 'char' or 'bpe'")


def save_tokenizer(tok: Any, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(tok, CharTokenizer):
        tok.save(directory / "chars.json")
    else:
        tok.save(directory)


def load_tokenizer(directory: Path) -> Any:
    if (directory / "chars.json").is_file():
        return CharTokenizer.load(directory / "chars.json")
    if (directory / "vocab.json").is_file():
        return BPETokenizer.from_pretrained(directory)
    raise FileNotFoundError(f"sample: no tokenizer found in {directory} (expected chars.json "
                            "or vocab.json + merges.txt)")


@dataclass
class Splits:
    train: np.ndarray
    val: np.ndarray


def split_ids(ids: list[int], block_size: int, cmd: str = "train gpt") -> Splits:
    """90/10 train/validation split of the token ids; both must hold a full block + 1."""
    data = np.asarray(ids, dtype=np.int64)
    n = int(0.9 * len(data))
    splits = Splits(data[:n], data[n:])
    for name, part in (("train", splits.train), ("validation", splits.val)):
        if len(part) <= block_size + 1:
            raise ValueError(f"{cmd}: the {name} split has {len(part)} tokens, fewer than "
                             f"block_size + 2 = {block_size + 2}; use more data or a smaller "
                             "--block-size")
    return splits


def get_batch(data: np.ndarray, batch_size: int, block_size: int,
              rng: np.random.Generator, device: Any = "cpu") -> tuple[lg.Tensor, lg.Tensor]:
    """Random windows of ``block_size`` tokens and the same windows shifted by one, on
    ``device``."""
    return _windows(data, rng.integers(0, len(data) - block_size - 1, batch_size), block_size,
                    device)


def _windows(data: np.ndarray, starts: np.ndarray, block_size: int,
             device: Any) -> tuple[lg.Tensor, lg.Tensor]:
    """The windows of ``block_size`` tokens at ``starts`` and the same shifted by one."""
    windows = data[starts[:, None] + np.arange(block_size + 1)]
    x, y = lg.from_numpy(windows[:, :-1].copy()), lg.from_numpy(windows[:, 1:].copy())
    return x.to(device), y.to(device)


EVAL_TOKENS = 4096
"""Tokens per forward pass of ``estimate_loss``: its fixed batches are stacked into passes
about this large (bigger products use BLAS better and the per-op Python is paid once per
pass; measured on the baby GPT, 5 batches of 12 x 64 tokens a pass take 4% less time than
one at a time, and all 20 in one pass 8% less, for 4x the activation memory)."""


@lg.no_grad()
def estimate_loss(model: Any, splits: Splits, batch_size: int, iters: int,
                  seed: int, block_size: int | None = None) -> dict[str, float]:
    """Mean loss over ``iters`` fixed batches of each split (model in eval mode), of
    ``block_size`` tokens (default: the model's ``config.block_size``).

    The batches are the ones ``iters`` calls of ``get_batch`` draw; they all hold the same
    number of tokens, so the mean of their means is the mean over all their tokens, and
    they run stacked, up to ``EVAL_TOKENS`` tokens per forward pass (the same value up to
    float32 rounding, in fewer and bigger products)."""
    model.eval()
    out = {}
    device = model_device(model)
    block_size = block_size or model.config.block_size
    per_pass = max(1, EVAL_TOKENS // (batch_size * block_size))  # batches per forward pass
    for name in ("train", "val"):
        rng = np.random.default_rng([seed, 999_983, len(name)])
        data = getattr(splits, name)
        losses, weights = [], []
        for first in range(0, iters, per_pass):
            count = min(per_pass, iters - first)
            starts = [rng.integers(0, len(data) - block_size - 1, batch_size)
                      for _ in range(count)]  # the draws get_batch makes, batch by batch
            x, y = _windows(data, np.concatenate(starts), block_size, device)
            losses.append(model(x, y)[1].item())
            weights.append(count)
        out[name] = float(np.average(losses, weights=weights))
    model.train()
    return out


# ----------------------------------------------------------------------------- training


def add_train_arguments(parser: argparse.ArgumentParser, kind: str = "gpt") -> None:
    """Options of ``lightgrad train gpt`` (or of another kind: ``train mamba``)."""
    spec = kind_named(kind, "train")
    a = parser.add_argument
    a("--data", type=Path, default=None,
      help="UTF-8 text file to train on (default: the Python standard library's sources)")
    baby = spec.config("baby", vocab_size=1)
    a("--preset", default="baby", choices=spec.presets,
      help=f"model size preset (default: baby = {spec.describe(baby)}, context "
           f"{spec.context('baby')})")
    a("--tokenizer", default="char", choices=["char", "bpe"],
      help="character-level (default) or byte-level BPE tokens")
    a("--bpe-vocab-size", type=positive(int), default=512,
      help="BPE vocabulary size (default: 512)")
    a("--block-size", type=positive(int), default=None,
      help="context length (default: the preset's)")
    a("--batch-size", type=positive(int), default=12, help="sequences per step (default: 12)")
    a("--max-iters", type=positive(int), default=1500,
      help="training steps (default: 1500, about two minutes for the baby preset)")
    a("--lr", type=positive(float), default=1e-3, help="peak learning rate (default: 1e-3)")
    a("--min-lr", type=non_negative(float), default=1e-4,
      help="final learning rate (default: 1e-4)")
    a("--warmup-iters", type=non_negative(int), default=100,
      help="linear warm-up steps (default: 100)")
    a("--weight-decay", type=non_negative(float), default=0.1,
      help="AdamW weight decay (default: 0.1)")
    a("--grad-clip", type=non_negative(float), default=1.0,
      help="max gradient norm, 0 = off (default: 1)")
    if spec.has_dropout:
        a("--dropout", type=probability, default=0.0, help="dropout probability (default: 0)")
    a("--eval-interval", type=positive(int), default=250, help="steps between val evaluations")
    a("--eval-iters", type=positive(int), default=20, help="batches per evaluation (default: 20)")
    a("--max-chars", type=positive(int), default=1_000_000,
      help="characters of the built-in corpus to use (default: 1,000,000)")
    a("--out", type=Path, default=Path(f"runs/{kind}"),
      help=f"run directory for checkpoint, tokenizer and plot (default: runs/{kind})")
    a("--resume", action="store_true", help="continue from the checkpoint in --out")
    a("--seed", type=non_negative(int), default=1337, help="random seed (default: 1337)")
    a("--jit", action=argparse.BooleanOptionalAction, default=True,
      help="run the training step under lg.jit (same results, less Python per step; "
           "default: on, in a single process)")
    a("--sample-chars", type=non_negative(int), default=300, help="tokens to sample at the end")
    add_device_argument(parser)
    add_nproc_argument(parser)


def _config_for(spec: ModelKind, args: argparse.Namespace,
                vocab_size: int) -> tuple[Any, dict[str, Any]]:
    """The model config and the run's config (the model's fields and the context length
    trained on, ``block_size``), which a resumed run must match."""
    block_size = args.block_size or spec.context(args.preset)
    config = spec.config(args.preset, vocab_size=vocab_size, block_size=block_size,
                         dropout=getattr(args, "dropout", 0.0))
    return config, {**config.to_dict(), "block_size": block_size}


def _check_resume(saved: dict[str, Any], run_config: dict[str, Any], path: Path,
                  cmd: str) -> None:
    if saved != run_config:
        diff = {k: (saved.get(k), v) for k, v in run_config.items() if saved.get(k) != v}
        raise ValueError(f"{cmd} --resume: the checkpoint {path} was made with a different "
                         f"config; (checkpoint, requested) differ in {diff}")


def training_step(model: Any, opt: Any, grad_clip: float, step_model: Any = None,
                  loss_scale: float | None = None, jit: bool = True) -> Any:
    """``step(x, y) -> loss``: forward, backward, gradient clipping (``grad_clip`` > 0) and
    an optimizer step; ``step_model`` runs the forward (default ``model``: a DDP wrapper on
    several ranks) and ``loss_scale`` multiplies the loss before backward.

    With ``jit`` (one process) the step runs under ``lg.jit``: the first calls trace it,
    later ones replay the recorded primitives without the per-op Python, with the same
    results bit for bit (the learning rate set in ``opt.param_groups`` between calls is read
    at each replay).

    >>> import lightgrad as lg
    >>> lg.manual_seed(0)
    >>> model = lg.nn.Linear(3, 1)
    >>> opt = lg.optim.SGD(model.parameters(), lr=0.1)
    >>> loss_of = lambda x, y: (None, ((model(x) - y) ** 2).mean())
    >>> step = training_step(model, opt, 1.0, loss_of, jit=False)
    >>> x, y = lg.ones(4, 3), lg.zeros(4, 1)
    >>> step(x, y).item() > step(x, y).item()
    True
    """
    forward = step_model if step_model is not None else model

    def step(x: lg.Tensor, y: lg.Tensor) -> lg.Tensor:
        _, loss = forward(x, y)
        opt.zero_grad(set_to_none=True)
        (loss * loss_scale if loss_scale is not None else loss).backward()
        if grad_clip:
            lg.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        return loss
    return lg.jit(step) if jit else step


def train(args: argparse.Namespace, log: Any = print) -> dict[str, Any]:
    """Run ``lightgrad train gpt`` (or ``train mamba``: ``args.model`` names the kind);
    returns the final losses and the run directory."""
    spec = kind_named(getattr(args, "model", "gpt"), "train")
    cmd = f"train {spec.name}"
    relaunch(args, cmd)  # --nproc N outside MPI: run this command on N ranks, then exit
    dp = DataParallel.setup(args, args.batch_size, cmd)
    log = dp.log(log)  # progress, evaluation, checkpoints and plots: rank 0 only
    device = resolve_device(getattr(args, "device", "cpu"), cmd)
    dp.check_device(device, cmd)
    lg.manual_seed(args.seed)  # after the device exists: it seeds every device in use
    out: Path = args.out
    check_out_dir(out, cmd)
    ckpt_path = out / CHECKPOINT
    if args.resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"{cmd} --resume: no checkpoint at {ckpt_path}")
        tok = load_tokenizer(out / "tokenizer")
    if args.data is not None:
        text, source = read_text(args.data, cmd), str(args.data)
    else:
        text, source = default_corpus(args.max_chars), "the Python standard library sources"
    if not args.resume:
        tok = build_tokenizer(args.tokenizer, text, args.bpe_vocab_size)
    config, run_config = _config_for(spec, args, tok.vocab_size)
    block_size = run_config["block_size"]
    splits = split_ids(tok.encode(text), block_size, cmd)
    # initialised on the CPU: the same weights on any device
    model = spec.model_class()(config).to(device)
    opt = model.configure_optimizers(args.weight_decay, args.lr, (0.9, 0.99))
    start_iter, history = 0, {"train": [], "val": [], "step": []}
    if args.resume:
        state = lg.load(ckpt_path, map_location="cpu")
        if state.get("kind", "gpt") != spec.name:
            raise ValueError(f"{cmd} --resume: the checkpoint {ckpt_path} holds a "
                             f"{state.get('kind', 'gpt')} model, not a {spec.name}")
        _check_resume(json.loads(state["config"]), run_config, ckpt_path, cmd)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_iter = int(state["iter"])
        history = json.loads(state["history"])
    elif dp.is_main:
        save_tokenizer(tok, out / "tokenizer")
    step = training_step(model, opt, args.grad_clip, dp.wrap(model),
                         dp.loss_scale(args.batch_size) if dp.world > 1 else None,
                         jit=getattr(args, "jit", True) and dp.world == 1)
    if dp.rank:  # dropout: rank 0 draws the masks one process would, the others their own
        lg.manual_seed(args.seed + 7_919 * dp.rank)
    log(f"data: {source}, {len(text):,} chars, {len(splits.train):,} train / "
        f"{len(splits.val):,} val tokens, vocab {tok.vocab_size}")
    log(f"model: {spec.title} {args.preset} ({spec.describe(config)}, context {block_size}), "
        f"{model.num_parameters() / 1e6:.2f}M parameters, on {device}")
    losses: dict[str, float] = {}
    bar = dp.progress(args.max_iters, initial=start_iter, desc=cmd)
    tokens_per_step = args.batch_size * block_size
    last = time.perf_counter()
    for it in range(start_iter, args.max_iters):
        lr = warmup_cosine_lr(it, args.lr, args.min_lr, args.warmup_iters, args.max_iters)
        for group in opt.param_groups:
            group["lr"] = lr
        rng = np.random.default_rng([args.seed, it])
        x, y = get_batch(splits.train, args.batch_size, block_size, rng, device)
        loss = step(dp.shard(x), dp.shard(y))  # this rank's rows of the batch
        step_loss = dp.mean(loss.item(), args.batch_size)  # of the whole batch
        history["step"].append([it, step_loss])
        now = time.perf_counter()
        bar.update(loss=step_loss, lr=lr, **{"tok/s": f"{tokens_per_step / (now - last):,.0f}"})
        last = now
        done = it + 1
        if dp.is_main and (done % args.eval_interval == 0 or done == args.max_iters):
            losses = estimate_loss(model, splits, args.batch_size, args.eval_iters, args.seed,
                                   block_size)
            history["train"].append([done, losses["train"]])
            history["val"].append([done, losses["val"]])
            bar.write(f"step {done}: train loss {losses['train']:.4f}, "
                      f"val loss {losses['val']:.4f}")
            lg.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                     "config": json.dumps(run_config), "kind": spec.name, "iter": done,
                     "history": json.dumps(history)}, ckpt_path)
            last = time.perf_counter()
    bar.close()
    if not dp.is_main:
        dp.close()
        return {"losses": losses, "out": out}
    log(save_curves(
        out / "loss.png", {"train (eval)": history["train"], "val (eval)": history["val"]},
        "training step (iterations)", "cross-entropy loss (nats/token)",
        f"{spec.title} {args.preset} on {Path(source).name if args.data else 'stdlib sources'}",
        noisy={"train (per step)": history["step"]}))
    if args.sample_chars > 0:
        log("sample:")
        log(sample_text(model, tok, "\n", args.sample_chars, temperature=0.8, top_k=None))
    dp.close()
    return {"losses": losses, "out": out}


def sample_text(model: Any, tok: Any, prompt: str, n: int, temperature: float = 0.8,
                top_k: int | None = None, top_p: float | None = None) -> str:
    """Continue ``prompt`` by ``n`` tokens (a GPT's context slides past block_size), on the
    model's device."""
    ids = tok.encode(prompt) or [0]
    device = model_device(model)
    idx = lg.tensor([ids], dtype=lg.int64, device=device)
    with default_device(device):  # the caches and masks generate() makes go there too
        out = model.generate(idx, n, temperature=temperature, top_k=top_k, top_p=top_p,
                             crop=True)
    return tok.decode(out[0].tolist())


# ----------------------------------------------------------------------------- sampling


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lightgrad sample``."""
    a = parser.add_argument
    a("--checkpoint", type=Path, default=Path("runs/gpt"),
      help="run directory or its ckpt.safetensors (default: runs/gpt)")
    a("--prompt", default="\n", help="text to continue (default: a newline)")
    a("-n", "--num-tokens", type=positive(int), default=500,
      help="tokens to generate (default: 500)")
    a("--temperature", type=non_negative(float), default=0.8, help="0 = greedy (default: 0.8)")
    a("--top-k", type=positive(int), default=None, help="sample from the k most likely tokens")
    a("--top-p", type=top_p_mass, default=None, help="nucleus sampling probability mass")
    a("--seed", type=non_negative(int), default=None, help="random seed for reproducible samples")
    add_device_argument(parser)


def load_run(path: Path, device: Any = "cpu") -> tuple[Any, Any]:
    """The model (GPT or Mamba, as the checkpoint's ``kind`` says; GPT when it says
    nothing), on ``device``, and tokenizer of a run directory (or of its checkpoint
    file)."""
    directory = path if path.is_dir() else path.parent
    ckpt = path if path.is_file() else path / CHECKPOINT
    if not ckpt.is_file():
        raise FileNotFoundError(f"sample: no checkpoint at {ckpt}; train one with "
                                "`lightgrad train gpt` or `lightgrad train mamba`")
    state = lg.load(ckpt, map_location="cpu")
    spec = kind_named(state.get("kind", "gpt"), f"sample: checkpoint {ckpt}")
    model = spec.model_class()(spec.config_class().from_dict(json.loads(state["config"])))
    model.load_state_dict(state["model"])
    model.to(device)
    model.eval()
    return model, load_tokenizer(directory / "tokenizer")


def sample(args: argparse.Namespace) -> str:
    """Run ``lightgrad sample``; prints and returns the text."""
    device = resolve_device(getattr(args, "device", "cpu"), "sample")
    if args.seed is not None:
        lg.manual_seed(args.seed)
    model, tok = load_run(args.checkpoint, device)
    text = sample_text(model, tok, args.prompt, args.num_tokens, args.temperature, args.top_k,
                       args.top_p)
    sys.stdout.write(text + "\n")
    return text
