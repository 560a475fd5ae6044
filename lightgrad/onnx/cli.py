"""``lightgrad onnx info|run|bench MODEL``: inspect, run and time an ONNX model.

>>> from lightgrad.cli import main
>>> main(["onnx", "info", "model.onnx"])  # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from typing import Any

import numpy as np

from .errors import OnnxError


def unsupported_ops(model: Any) -> list[str]:
    """'domain::Op (opset N)' for every op type in ``model`` that lightgrad cannot run."""
    from .graph import norm_domain
    from .ops import OPS
    from .ops.registry import _schema_function
    opsets = {norm_domain(i.domain): i.version for i in model.opset_import}
    local = {(norm_domain(f.domain), f.name) for f in model.functions}
    missing = set()

    class _N:
        pass

    def walk(graph: Any) -> None:
        for n in graph.node:
            key = (norm_domain(n.domain), n.op_type)
            if key not in OPS and key not in local:
                probe = _N()
                probe.op_type, probe.domain = n.op_type, key[0]
                if _schema_function(probe, opsets.get(key[0], 0)) is None:
                    missing.add(f"{key[0] or 'ai.onnx'}::{n.op_type} (opset "
                                f"{opsets.get(key[0], 0)})")
            for a in n.attribute:
                if a.HasField("g"):
                    walk(a.g)
                for g in a.graphs:
                    walk(g)
    walk(model.graph)
    return sorted(missing)


def _histogram(graph: Any, counts: Counter) -> Counter:
    for n in graph.node:
        counts[n.op_type] += 1
        for a in n.attribute:
            if a.HasField("g"):
                _histogram(a.g, counts)
            for g in a.graphs:
                _histogram(g, counts)
    return counts


def _type_str(vi: Any) -> str:
    from .model import InputSpec
    return InputSpec(vi).describe()


def cmd_info(args: argparse.Namespace) -> int:
    from .load import read_model
    model = read_model(args.model)
    g = model.graph
    inits = {t.name for t in g.initializer}
    n_params = sum(int(np.prod(t.dims)) for t in g.initializer)
    opsets = ", ".join(f"{i.domain or 'ai.onnx'} {i.version}" for i in model.opset_import)
    print(f"model: {args.model}")
    print(f"producer: {model.producer_name} {model.producer_version}".rstrip())
    print(f"ir_version: {model.ir_version}; opsets: {opsets}")
    print("inputs:")
    for vi in g.input:
        if vi.name not in inits:
            print(f"  {vi.name}: {_type_str(vi)}")
    print("outputs:")
    for vi in g.output:
        print(f"  {vi.name}: {_type_str(vi)}")
    print(f"initializers: {len(g.initializer)} ({n_params:,} values)")
    hist = _histogram(g, Counter())
    print(f"nodes: {sum(hist.values())} ({len(hist)} op types)")
    for op, n in hist.most_common():
        print(f"  {op:28s} {n}")
    missing = unsupported_ops(model)
    print("unsupported ops: " + (", ".join(missing) if missing else "none"))
    return 0 if not missing else 1


def _example_inputs(module: Any, given: dict, batch: int | None = None) -> dict:
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in module.input_specs:
        if spec.name in given:
            feeds[spec.name] = given[spec.name]
            continue
        if spec.kind != "tensor":
            raise OnnxError(f"input {spec.name!r} is a {spec.kind}: pass it with --input")
        dims = [d if isinstance(d, int) and d > 0 else 1 for d in (spec.dims or [])]
        if batch is not None and dims and not (isinstance(spec.dims[0], int) and
                                               spec.dims[0] > 0):
            dims[0] = batch
        dt = spec.dtype if spec.dtype is not None else np.dtype(np.float32)
        if dt.kind == "f":
            feeds[spec.name] = rng.standard_normal(dims).astype(dt)
        elif dt.kind == "b":
            feeds[spec.name] = np.zeros(dims, dt)
        else:
            feeds[spec.name] = np.zeros(dims, dt)
    return feeds


def _parse_inputs(items: list) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--input expects name=file.npy, got {item!r}")
        name, path = item.split("=", 1)
        out[name] = np.load(path, allow_pickle=False)
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from .load import load
    from .run import run
    module = load(args.model)
    given = _parse_inputs(args.input)
    feeds = _example_inputs(module, given)
    for name, v in feeds.items():
        if name not in given:
            print(f"input {name}: random {v.dtype} {v.shape} (not given)")
    t0 = time.perf_counter()
    outs = run(module, feeds)
    ms = (time.perf_counter() - t0) * 1e3
    out_dir = args.out or "."
    os.makedirs(out_dir, exist_ok=True)
    for name, o in zip(module.output_names, outs):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        if isinstance(o, np.ndarray):
            path = os.path.join(out_dir, f"{safe}.npy")
            np.save(path, o)
            stats = ""
            if o.size and o.dtype.kind in "fiub":
                f = o.astype(np.float64)
                stats = f" min {f.min():.4g} max {f.max():.4g} mean {f.mean():.4g}"
            print(f"output {name}: {o.dtype} {o.shape}{stats} -> {path}")
        else:
            print(f"output {name}: {type(o).__name__}")
    print(f"ran in {ms:.1f} ms")
    return 0


def bench_model(path: str, batch: int | None = None, iters: int = 20, threads: int = 2,
                feeds: dict | None = None) -> dict:
    """Median latency (ms) of lightgrad and, when installed, onnxruntime on one model."""
    import lightgrad as lg

    from .load import load
    lg.set_num_threads(threads)
    module = load(path)
    feeds = feeds or _example_inputs(module, {}, batch)
    result: dict = {}
    with lg.no_grad():
        args = [lg.from_numpy(v) if v.dtype.kind in "fiub" else v for v in feeds.values()]
        module(*args)
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            module(*args)
            times.append(time.perf_counter() - t0)
    result["lightgrad"] = 1e3 * float(np.median(times))
    try:
        import onnxruntime as ort
    except ImportError:
        return result
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    sess.run(None, feeds)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t0)
    result["onnxruntime"] = 1e3 * float(np.median(times))
    return result


def cmd_bench(args: argparse.Namespace) -> int:
    res = bench_model(args.model, args.batch, args.iters, args.threads)
    items = args.batch or 1
    base = res.get("onnxruntime")
    for name, ms in res.items():
        ratio = f"  ({ms / base:.2f}x onnxruntime)" if base and name != "onnxruntime" else ""
        print(f"{name:12s} {ms:9.3f} ms/run  {1e3 * items / ms:10.1f} items/s{ratio}")
    if base is None:
        print("onnxruntime not installed: pip install onnxruntime to compare")
    return 0


def _guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except OnnxError as err:
            print(f"lightgrad: error: {err}", file=sys.stderr)
            return 2
    return run


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``onnx info|run|bench`` to the ``lightgrad`` command's subparsers."""
    p = sub.add_parser("onnx", help="inspect, run and time ONNX models (needs onnx)")
    cmds = p.add_subparsers(dest="onnx_command", required=True)
    info = cmds.add_parser("info", help="inputs, outputs, opsets, op histogram, unsupported "
                                        "ops")
    info.add_argument("model")
    info.set_defaults(func=_guard(cmd_info))
    run = cmds.add_parser("run", help="run a model; prints output shapes, writes .npy files")
    run.add_argument("model")
    run.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                     help="an input (repeat); missing inputs get random values")
    run.add_argument("--out", help="folder for the output .npy files (default: .)")
    run.set_defaults(func=_guard(cmd_run))
    bench = cmds.add_parser("bench", help="latency and throughput vs onnxruntime")
    bench.add_argument("model")
    bench.add_argument("--batch", type=int, default=None, help="size of dynamic batch dims")
    bench.add_argument("--iters", type=int, default=20)
    bench.add_argument("--threads", type=int, default=2)
    bench.set_defaults(func=_guard(cmd_bench))
