"""The CPU training steps on a shared machine (another process keeps a core busy) and their
peak memory, lightgrad beside PyTorch.

    python benchmarks/cpu_contention.py busy [gpt mlp cnn] [--rounds 7] [--spinners 1]
    python benchmarks/cpu_contention.py rss [gpt gpt-jit cnn] [--steps 10]

``busy``: each framework's default threads (lightgrad's automatic BLAS count, PyTorch's
one thread per core), wall ms per step (median of alternating rounds), first as the
machine is, then while ``--spinners`` CPU-bound processes (``while True: pass``) run
beside it; prints both frameworks' slowdown (busy / as-is). A BLAS thread that lands on a
busy core makes every product wait for it, so a framework that keeps one thread per core
slows down far more than the one core it lost. On a machine that other jobs already load,
the "as is" figure is not an idle machine: the load average is printed with it.

``rss``: one fresh process per framework and step (``gpt_steps``/``cnn_steps`` of
``cpu_time.py``, one thread), so neither library's allocations count for the other; the
lightgrad process never imports PyTorch. Prints the peak resident memory over ``--steps``
training steps (``VmHWM``, reset just before the first step) above the memory the process
held before it (model, data, libraries), and the whole process's peak.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

# the user's thread settings, read before cpu_time.py (imported later) sets one BLAS thread
# for its own CPU-time figures; NumPy loads OpenBLAS here, so its pool keeps every core
BLAS_ENV = {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
import numpy  # noqa: E402,F401

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SPIN = "while True:\n    pass\n"


def median_ms(fns: dict[str, Callable[[], object]], steps: int, rounds: int
              ) -> dict[str, float]:
    """Median wall ms per call of each function over ``rounds`` alternating rounds of
    ``steps`` calls (the median: under contention the best round is a lucky one)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times[name].append((time.perf_counter() - start) / steps * 1e3)
    return {name: statistics.median(v) for name, v in times.items()}


class Spinners:
    """``n`` CPU-bound child processes for the duration of a ``with`` block."""

    def __init__(self, n: int):
        self.n = n
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "Spinners":
        self.procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(self.n)]
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait()


STEPS_PER_ROUND = {"gpt": 5, "mlp": 40, "cnn": 3}


def busy(names: list[str], rounds: int, spinners: int, settle: float) -> None:
    import torch

    import cpu_time
    import lightgrad as lg
    lg.set_num_threads(None)  # automatic, as a user gets it
    for var, value in BLAS_ENV.items():
        if value:
            print(f"note: {var}={value} is set: OpenBLAS keeps at most that many threads")
    print(f"default threads: torch {torch.get_num_threads()}, lightgrad automatic; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"{spinners} spinning process(es) when busy")
    for name in names:
        steps = getattr(cpu_time, f"{name}_steps")(torch)
        n = STEPS_PER_ROUND[name]
        for fn in steps.values():
            fn()
        as_is = median_ms(steps, n, rounds)
        with Spinners(spinners):
            time.sleep(settle)  # lightgrad re-decides its threads from the last interval
            for fn in steps.values():
                fn()
            loaded = median_ms(steps, n, rounds)
        ours, theirs = (loaded[k] / as_is[k] for k in ("lightgrad", "pytorch"))
        print(f"  {name:4s} ms/step as is: lightgrad {as_is['lightgrad']:8.2f} pytorch "
              f"{as_is['pytorch']:8.2f} | busy: lightgrad {loaded['lightgrad']:8.2f} "
              f"pytorch {loaded['pytorch']:8.2f} | slowdown lightgrad {ours:5.2f}x "
              f"pytorch {theirs:5.2f}x")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(name: str, framework: str, steps: int) -> None:
    """Run in a fresh process: ``steps`` training steps of one framework; prints JSON."""
    import cpu_time
    torch = None
    if framework == "pytorch":
        import torch
        torch.set_num_threads(1)
    import lightgrad as lg
    lg.set_num_threads(1)
    jitted = name.endswith("-jit")  # lightgrad's step under lg.jit (traced twice first)
    step = getattr(cpu_time, f"{name.removesuffix('-jit')}_steps")(torch)[framework]
    if jitted:
        step = lg.jit(step)
    before = _status_kb("VmRSS")
    try:  # reset the peak to the current size (Linux 4.0+), so it is the steps' own
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    for _ in range(steps):
        step()
    print(json.dumps({"before_kb": before, "peak_kb": _status_kb("VmHWM"), "reset": reset}))


def _peaks(name: str, framework: str, steps: int) -> dict:
    """Run ``child`` in a fresh process; its JSON line."""
    out = subprocess.run([sys.executable, __file__, "--child", name, framework, "--steps",
                          str(steps)], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def rss(names: list[str], steps: int) -> None:
    print(f"peak resident memory of {steps} training steps, one process each, one thread "
          "(NAME-jit: lightgrad's step under lg.jit, beside PyTorch's eager one)")
    for name in names:
        ours = _peaks(name, "lightgrad", steps)
        theirs = _peaks(name.removesuffix("-jit"), "pytorch", steps)
        step_mb = [(v["peak_kb"] - v["before_kb"]) / 1024 for v in (ours, theirs)]
        print(f"  {name:7s} steps' peak above start: lightgrad {step_mb[0]:7.1f} MB pytorch "
              f"{step_mb[1]:7.1f} MB | process peak: lightgrad {ours['peak_kb'] / 1024:7.1f} "
              f"MB pytorch {theirs['peak_kb'] / 1024:7.1f} MB"
              + ("" if ours["reset"] and theirs["reset"] else " (peak not reset)"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["busy", "rss"], default="busy")
    parser.add_argument("names", nargs="*", help="benchmarks (default: all of the mode's)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per measurement (busy)")
    parser.add_argument("--spinners", type=int, default=1, help="busy processes (busy)")
    parser.add_argument("--settle", type=float, default=1.5,
                        help="seconds between starting the spinners and timing (busy)")
    parser.add_argument("--steps", type=int, default=10, help="training steps (rss)")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "FRAMEWORK"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, args.steps)
    elif args.mode == "busy":
        busy(args.names or ["gpt", "mlp", "cnn"], args.rounds, args.spinners, args.settle)
    else:
        rss(args.names or ["gpt", "gpt-jit", "cnn"], args.steps)


if __name__ == "__main__":
    main()
