"""The ONNX backend-test conformance runner.

``python -m lightgrad.onnx.conformance --data DIR`` runs every ``DIR/<test>/model.onnx``
on each ``test_data_set_*/input_*.pb`` (every input fed live, as the runner reads it) and
compares with ``output_*.pb`` the way onnx's backend tests do: same dtype, same shape,
``assert_allclose(rtol=1e-3, atol=1e-7)`` (exact for strings). It prints per-op results
and a last line ``N passed, M failed``. ``--generate DIR`` writes the node test cases the
installed ``onnx`` package defines (``onnx.backend.test.case.node``) into DIR first.

>>> import lightgrad.onnx.conformance as c
>>> c.main(["--data", "/path/to/onnx/backend/test/data/node"])  # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import signal
import sys
import time
from collections import defaultdict
from typing import Any, Sequence

import numpy as np

RTOL, ATOL = 1e-3, 1e-7


def _read_proto(path: str, vtype: Any) -> Any:
    import onnx
    from onnx import numpy_helper
    data = open(path, "rb").read()
    kind = vtype.WhichOneof("value") if vtype is not None else "tensor_type"
    if kind == "sequence_type":
        p = onnx.SequenceProto()
        p.ParseFromString(data)
        return numpy_helper.to_list(p)
    if kind == "optional_type":
        p = onnx.OptionalProto()
        p.ParseFromString(data)
        return numpy_helper.to_optional(p)
    if kind == "map_type":
        p = onnx.MapProto()
        p.ParseFromString(data)
        return numpy_helper.to_dict(p)
    p = onnx.TensorProto()
    p.ParseFromString(data)
    return numpy_helper.to_array(p)


def _files(ds: str, kind: str) -> list[str]:
    found = glob.glob(os.path.join(ds, f"{kind}_*.pb"))
    return sorted(found, key=lambda p: int(re.findall(r"_(\d+)\.pb$", p)[0]))


def compare(ref: Any, out: Any, rtol: float = RTOL, atol: float = ATOL, where: str = "") -> None:
    """Raise AssertionError unless ``out`` matches ``ref`` like onnx's backend tests."""
    if isinstance(ref, (list, tuple)):
        if not isinstance(out, (list, tuple)) or len(out) != len(ref):
            raise AssertionError(f"{where}: expected a sequence of {len(ref)}, got "
                                 f"{type(out).__name__}")
        for i, (r, o) in enumerate(zip(ref, out)):
            compare(r, o, rtol, atol, f"{where}[{i}]")
        return
    if ref is None or out is None:
        if ref is not out:
            raise AssertionError(f"{where}: expected {ref!r}, got {type(out).__name__}")
        return
    out = np.asarray(out)
    ref = np.asarray(ref)
    if out.dtype != ref.dtype:
        raise AssertionError(f"{where}: dtype {out.dtype}, expected {ref.dtype}")
    if out.shape != ref.shape:
        raise AssertionError(f"{where}: shape {out.shape}, expected {ref.shape}")
    if ref.dtype == object or ref.dtype.kind in "SU":
        np.testing.assert_array_equal(out, ref, err_msg=where)
    else:
        np.testing.assert_allclose(out.astype(np.float64) if out.dtype.kind == "V" else out,
                                   ref.astype(np.float64) if ref.dtype.kind == "V" else ref,
                                   rtol=rtol, atol=atol, err_msg=where)


def _legacy_bf16(v: Any, vtype: Any) -> Any:
    """Old test data store bfloat16 tensors as uint16 bit patterns: view them as bfloat16."""
    if isinstance(v, np.ndarray) and v.dtype == np.uint16 and vtype is not None and \
            vtype.WhichOneof("value") == "tensor_type" and vtype.tensor_type.elem_type == 16:
        import ml_dtypes
        return v.view(ml_dtypes.bfloat16)
    return v


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def check_case(model: Any, datasets: Sequence[tuple], types_in: list | None = None,
               types_out: list | None = None) -> None:
    """Run a model (path, bytes or ModelProto) on ``[(inputs, expected_outputs), ...]``;
    raises AssertionError on a mismatch (any other error propagates)."""
    from . import load
    from .run import run
    module = load(model)
    for ins, refs in datasets:
        if types_in:
            ins = [_legacy_bf16(v, t) for v, t in zip(ins, types_in)]
        if types_out:
            refs = [_legacy_bf16(v, t) for v, t in zip(refs, types_out)]
        outs = run(module, list(ins))
        if len(outs) != len(refs):
            raise AssertionError(f"{len(outs)} outputs, expected {len(refs)}")
        for i, (r, o) in enumerate(zip(refs, outs)):
            compare(r, o, where=f"output {i}")


def _guarded(fn: Any, timeout: float) -> tuple[bool, str]:
    """(passed, reason) for ``fn()``, with a per-test alarm on the main thread."""
    use_alarm = bool(timeout) and hasattr(signal, "SIGALRM")
    old = None
    try:
        if use_alarm:
            old = signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout)
        fn()
        return True, ""
    except _Timeout:
        return False, f"timeout after {timeout:.0f}s"
    except AssertionError as e:
        return False, "mismatch: " + str(e).strip().split("\n")[0][:200]
    except Exception as e:
        return False, f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def run_test(test_dir: str, timeout: float = 60.0) -> tuple[bool, str]:
    """Run one test folder; (passed, reason)."""
    import onnx

    def body() -> None:
        path = os.path.join(test_dir, "model.onnx")
        model = onnx.load(path, load_external_data=False)
        init = {t.name for t in model.graph.initializer}
        types_in = [vi.type for vi in model.graph.input if vi.name not in init]
        types_out = [vi.type for vi in model.graph.output]
        datasets = sorted(glob.glob(os.path.join(test_dir, "test_data_set_*")))
        if not datasets:
            raise AssertionError("no test_data_set_*")
        data = []
        for ds in datasets:
            ins = [_read_proto(p, types_in[i] if i < len(types_in) else None)
                   for i, p in enumerate(_files(ds, "input"))]
            refs = [_read_proto(p, types_out[i] if i < len(types_out) else None)
                    for i, p in enumerate(_files(ds, "output"))]
            data.append((ins, refs))
        check_case(path, data, types_in, types_out)

    return _guarded(body, timeout)


def run_case(case: Any, timeout: float = 60.0) -> tuple[bool, str]:
    """Run one in-memory ``onnx.backend.test`` case (``case.model``, ``case.data_sets``)."""
    def body() -> None:
        data = [([_from_case(v) for v in ins], [_from_case(v) for v in outs])
                for ins, outs in case.data_sets]
        check_case(case.model, data)

    return _guarded(body, timeout)


def _from_case(v: Any) -> Any:
    if hasattr(v, "SerializeToString"):
        from onnx import numpy_helper
        return numpy_helper.to_array(v)
    return v


def _op_label(test_dir: str) -> str:
    import onnx
    name = os.path.basename(test_dir)
    key = name[5:].replace("_", "").lower() if name.startswith("test_") else name.lower()
    try:
        ops = {n.op_type for n in onnx.load(os.path.join(test_dir, "model.onnx"),
                                            load_external_data=False).graph.node}
    except Exception:
        return "?"
    best = [o for o in ops if key.startswith(o.lower())]
    if best:
        return max(best, key=len)
    rest = sorted(ops - {"Constant"})
    return rest[0] if rest else "Constant"


def generate(out_dir: str) -> int:
    """Write the installed onnx's node test cases into ``out_dir``; returns their count."""
    from onnx import numpy_helper
    from onnx.backend.test.case import node as node_cases
    count = 0
    for case in node_cases.collect_testcases(None):
        d = os.path.join(out_dir, case.name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        for i, (ins, outs) in enumerate(case.data_sets):
            ds = os.path.join(d, f"test_data_set_{i}")
            os.makedirs(ds, exist_ok=True)
            for kind, vals, infos in (("input", ins, case.model.graph.input),
                                      ("output", outs, case.model.graph.output)):
                for j, v in enumerate(vals):
                    t = infos[j].type
                    if t.HasField("sequence_type"):
                        p = numpy_helper.from_list(v, infos[j].name)
                    elif t.HasField("optional_type"):
                        p = numpy_helper.from_optional(v, infos[j].name)
                    elif hasattr(v, "SerializeToString"):
                        p = v
                    else:
                        p = numpy_helper.from_array(v, infos[j].name)
                    with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                        f.write(p.SerializeToString())
        count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lightgrad.onnx.conformance",
                                 description="Run ONNX backend node tests on lightgrad.")
    ap.add_argument("--data", required=True, help="folder of test_* folders")
    ap.add_argument("--generate", action="store_true",
                    help="first write the installed onnx's node test cases into --data")
    ap.add_argument("--filter", default="", help="regex on test names")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per test")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every failure")
    args = ap.parse_args(argv)
    import warnings
    warnings.filterwarnings("ignore")
    if args.generate:
        print(f"generated {generate(args.data)} test cases in {args.data}")
    tests = sorted(d for d in glob.glob(os.path.join(args.data, "*"))
                   if os.path.isfile(os.path.join(d, "model.onnx"))
                   and re.search(args.filter, os.path.basename(d)))
    per_op: dict[str, list] = defaultdict(lambda: [0, 0, []])
    passed = failed = 0
    t0 = time.time()
    for d in tests:
        ok, why = run_test(d, args.timeout)
        label = _op_label(d)
        per_op[label][1] += 1
        if ok:
            passed += 1
            per_op[label][0] += 1
        else:
            failed += 1
            per_op[label][2].append((os.path.basename(d), why))
    for label in sorted(per_op):
        p, n, fails = per_op[label]
        print(f"{label:32s} {p:4d}/{n:<4d}" + ("" if p == n else "  FAIL"))
        if args.verbose:
            for name, why in fails:
                print(f"    {name}: {why}")
    print(f"# {time.time() - t0:.1f}s, {len(tests)} tests, "
          f"{100.0 * passed / max(len(tests), 1):.1f}% passed", file=sys.stderr)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
