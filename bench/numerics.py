"""Numerics benchmark: the reference RNN / LSTM layers, forward + backward, float64.

    python -m bench.numerics [--quick] [--threads 1,2]

For each BLAS thread count (a fresh subprocess per setting, with
OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS set before numpy
loads, and ``torch.set_num_threads`` to match) and each hidden size H, at
N=64, T=100, D=128:

- ``reference``: ``autograder.reference`` ``*_forward`` + ``*_backward`` (full BPTT);
- ``naive``: :mod:`bench.naive`, a loop over time calling the step functions
  with per-step weight gradients;
- ``torch``: ``torch.nn.RNN`` / ``torch.nn.LSTM`` (float64, batch_first,
  autograd backward of ``h`` with the same upstream gradient), when torch is
  installed (``pip install -e .[bench]``).

Times are wall-clock medians over several repeats after a warm-up, the three
implementations interleaved round-robin so that load from other processes
hits them alike.  Before timing, the three are checked to compute the same
thing (h and every gradient, max relative difference printed).

FLOPs counted: the matrix products only, analytically.  With G = 1 (RNN) or
4 (LSTM), the forward pass does the input projection (2*N*T*D*G*H) and the
recurrence (2*N*T*H*G*H); the backward pass does dx, dWx, dh_{t-1} (the
backward recurrence) and dWh, the same sizes again twice over.  Total
``6 * G * N * T * H * (D + H)``.  Nonlinearities and elementwise work are not
counted (they are what makes the rate fall short of the matmul rate).

Rooflines, measured in the same subprocess: the float64 rate of a large square
``(M, M) @ (M, M)`` product (M=1536; "peak", the main roofline) and of the
recurrence-sized product ``(N, H) @ (H, G*H)`` repeated T times ("same-shape").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from bench import (
    ROOT,
    loadavg,
    machine,
    median,
    table,
    time_calls,
    venv_env,
    verdict,
    write_json,
)

FULL = dict(N=64, T=100, D=128, Hs=(128, 256, 512), peak_M=1536, peak_repeats=5,
            repeats={128: 11, 256: 7, 512: 3})
QUICK = dict(N=4, T=5, D=8, Hs=(8, 16), peak_M=128, peak_repeats=1, repeats={8: 1, 16: 1})
CELLS = ("rnn", "lstm")
GATES = {"rnn": 1, "lstm": 4}
TARGET_VS_TORCH = 2.0  # reference at least 2x faster than torch at H=128
TARGET_ROOFLINE = 0.40  # reference at least 40% of the large-dgemm rate at H=256


def flops(cell, N, T, D, H):
    """Matmul FLOPs of one forward + backward pass: 6 * G * N * T * H * (D + H)."""
    return 6 * GATES[cell] * N * T * H * (D + H)


# --------------------------------------------------------------------------- #
# the child: one thread setting, everything measured in one process
# --------------------------------------------------------------------------- #
def _rel(a, b):
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(np.max(np.abs(a - b), initial=0.0))
    scale = float(np.max(np.abs(b), initial=0.0))
    return diff / scale if scale else diff


def _dgemm(np, M):
    """A large square float64 product, (M, M) @ (M, M): 2 M^3 FLOPs per call."""
    A = np.random.default_rng(0).standard_normal((M, M))
    B = np.random.default_rng(1).standard_normal((M, M))
    C = np.empty((M, M))
    return lambda: np.matmul(A, B, out=C)


def _same_shape(np, N, T, H, G):
    """The recurrence's product, (N, H) @ (H, G*H), T times: 2 N H G H T FLOPs per call."""
    rng = np.random.default_rng(2)
    h = rng.standard_normal((N, H))
    W = rng.standard_normal((H, G * H))
    out = np.empty((N, G * H))

    def run():
        for _ in range(T):
            np.matmul(h, W, out=out)

    return run


def _torch_layer(torch, cell, D, H, Wx, Wh, b):
    """A torch layer holding the reference's weights (torch's LSTM gate order is i, f, g, o)."""
    import numpy as np

    if cell == "rnn":
        m = torch.nn.RNN(D, H, batch_first=True, nonlinearity="tanh").double()
        perm = np.arange(H)
    else:
        m = torch.nn.LSTM(D, H, batch_first=True).double()
        perm = np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]  # ours i,f,o,g -> torch i,f,g,o
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(Wx[:, perm].T)))
        m.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(Wh[:, perm].T)))
        m.bias_ih_l0.copy_(torch.from_numpy(b[perm]))
        m.bias_hh_l0.zero_()
    return m, perm


def child(threads, quick, use_torch=True):
    import numpy as np

    from autograder import reference as R
    from bench import naive

    torch = torch_version = None
    if use_torch:
        try:
            import torch

            torch.set_num_threads(threads)
            torch_version = torch.__version__
        except ImportError:
            torch = None

    P = QUICK if quick else FULL
    N, T, D = P["N"], P["T"], P["D"]
    M = P["peak_M"]
    dgemm = _dgemm(np, M)
    ts = time_calls({"dgemm": dgemm}, P["peak_repeats"])["dgemm"]
    out = {"threads": threads, "torch": torch_version, "peak_M": M,
           "peak_gflops": 2 * M**3 / median(ts) / 1e9, "peak_gflops_best": 2 * M**3 / min(ts) / 1e9,
           "rows": [], "loadavg_start": loadavg()}
    for H in P["Hs"]:
        repeats = P["repeats"][H]
        for cell in CELLS:
            G = GATES[cell]
            rng = np.random.default_rng(H * 10 + G)
            x = rng.standard_normal((N, T, D))
            h0 = 0.1 * rng.standard_normal((N, H))
            Wx = rng.standard_normal((D, G * H)) / np.sqrt(D)
            Wh = 0.7 * rng.standard_normal((H, G * H)) / np.sqrt(H)
            b = 0.1 * rng.standard_normal(G * H)
            dh = rng.standard_normal((N, T, H))
            fwd, bwd = getattr(R, f"{cell}_forward"), getattr(R, f"{cell}_backward")
            nfwd, nbwd = getattr(naive, f"{cell}_forward"), getattr(naive, f"{cell}_backward")

            def ref(fwd=fwd, bwd=bwd, x=x, h0=h0, Wx=Wx, Wh=Wh, b=b, dh=dh):
                h, cache = fwd(x, h0, Wx, Wh, b)
                return (h, *bwd(dh, cache))

            def nai(fwd=nfwd, bwd=nbwd, x=x, h0=h0, Wx=Wx, Wh=Wh, b=b, dh=dh):
                h, caches = fwd(x, h0, Wx, Wh, b)
                return (h, *bwd(dh, caches))

            fns = {"reference": ref, "naive": nai}
            want = ref()
            check = {"naive": max(_rel(a, w) for a, w in zip(nai(), want, strict=True))}
            if torch is not None:
                m, perm = _torch_layer(torch, cell, D, H, Wx, Wh, b)
                xt = torch.from_numpy(x.copy()).requires_grad_()
                h0t = torch.from_numpy(h0[None].copy()).requires_grad_()
                c0t = torch.zeros_like(h0t)
                dht = torch.from_numpy(dh.copy())

                def tor(m=m, xt=xt, h0t=h0t, c0t=c0t, dht=dht, cell=cell):
                    m.zero_grad(set_to_none=True)
                    xt.grad = h0t.grad = None
                    y, _ = m(xt, h0t) if cell == "rnn" else m(xt, (h0t, c0t))
                    y.backward(dht)
                    return y

                y = tor()
                inv = np.argsort(perm)
                got = (y.detach().numpy(), xt.grad.numpy(), h0t.grad.numpy()[0],
                       m.weight_ih_l0.grad.numpy().T[:, inv], m.weight_hh_l0.grad.numpy().T[:, inv],
                       m.bias_ih_l0.grad.numpy()[inv])
                check["torch"] = max(_rel(a, w) for a, w in zip(got, want, strict=True))
                fns["torch"] = tor
            # the two rooflines go round the same robin: same load, same moment
            fns["peak"] = dgemm
            fns["same_shape"] = _same_shape(np, N, T, H, G)
            la = loadavg()
            cpu = {}
            ts = time_calls(fns, repeats, cpu=cpu)
            fl = flops(cell, N, T, D, H)
            row = {"threads": threads, "cell": cell, "H": H, "N": N, "T": T, "D": D,
                   "repeats": repeats, "gflop": fl / 1e9, "max_rel_diff": check, "loadavg": la,
                   "peak_gflops": 2 * M**3 / median(ts.pop("peak")) / 1e9,
                   "same_shape_gflops": 2 * N * H * G * H * T / median(ts.pop("same_shape")) / 1e9}
            for name, t in ts.items():
                row[f"{name}_ms"] = median(t) * 1e3
                row[f"{name}_best_ms"] = min(t) * 1e3
                row[f"{name}_cpu_ms"] = median(cpu[name]) * 1e3
                row[f"{name}_all_ms"] = [round(v * 1e3, 3) for v in t]
            row["gflops"] = fl / (row["reference_ms"] / 1e3) / 1e9
            row["frac_peak"] = row["gflops"] / row["peak_gflops"]
            row["frac_same_shape"] = row["gflops"] / row["same_shape_gflops"]
            row["vs_naive"] = row["naive_ms"] / row["reference_ms"]
            row["vs_torch"] = row["torch_ms"] / row["reference_ms"] if "torch_ms" in row else None
            # CPU time ratio: immune to other processes' load, but only a latency ratio
            # when both sides run on one thread
            row["vs_torch_cpu"] = (row["torch_cpu_ms"] / row["reference_cpu_ms"]
                                   if "torch_ms" in row and threads == 1 else None)
            out["rows"].append(row)
    out["loadavg_end"] = loadavg()
    return out


# --------------------------------------------------------------------------- #
# the parent: one subprocess per thread setting, the table, the targets
# --------------------------------------------------------------------------- #
def _run_child(threads, quick, use_torch=True):
    env = venv_env({"OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
                    "MKL_NUM_THREADS": threads})
    with tempfile.TemporaryDirectory(prefix="bench-numerics-") as tmp:
        path = os.path.join(tmp, "out.json")
        cmd = [sys.executable, "-m", "bench.numerics", "--child", str(threads), "--out", path]
        if quick:
            cmd.append("--quick")
        if not use_torch:
            cmd.append("--no-torch")
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        with open(path) as f:
            return json.load(f)


def targets(results, quick=False):
    """Evaluate the two targets on the measured rows (None where not measurable)."""
    H_small, H_mid = (8, 16) if quick else (128, 256)
    out = []
    for res in results:
        th = res["threads"]
        for row in res["rows"]:
            if row["H"] == H_small:
                v = row["vs_torch"]
                out.append({"target": f"{row['cell']} H={H_small} {th} thr: reference >= "
                                      f"{TARGET_VS_TORCH:g}x faster than torch",
                            "value": v, "cpu_value": row.get("vs_torch_cpu"),
                            "met": None if v is None else v >= TARGET_VS_TORCH})
            if row["H"] == H_mid:
                v = row["frac_peak"]
                out.append({"target": f"{row['cell']} H={H_mid} {th} thr: reference >= "
                                      f"{TARGET_ROOFLINE:.0%} of large-dgemm rate",
                            "value": v, "met": v >= TARGET_ROOFLINE,
                            "same_shape_fraction": row["frac_same_shape"]})
    return out


def agreement(results):
    """One line: the largest relative difference from the reference, per implementation."""
    worst = {}
    for res in results:
        for row in res["rows"]:
            for k, v in row["max_rel_diff"].items():
                worst[k] = max(worst.get(k, 0.0), v)
    return ("Agreement with the reference (max relative difference of h and every gradient): "
            + ", ".join(f"{k} {v:.0e}" for k, v in sorted(worst.items())) + ".")


def render(results, quick=False):
    rows = [row for res in results for row in res["rows"]]
    cols = [("thr", "threads", "d"), ("cell", "cell", ""), ("H", "H", "d"),
            ("GFLOP", "gflop", ".3g"), ("ref ms", "reference_ms", ".1f"),
            ("best", "reference_best_ms", ".1f"), ("cpu", "reference_cpu_ms", ".1f"),
            ("GFLOP/s", "gflops", ".1f"), ("peak", "peak_gflops", ".1f"),
            ("%peak", "frac_peak", ".0%"), ("same", "same_shape_gflops", ".1f"),
            ("%same", "frac_same_shape", ".0%"), ("naive ms", "naive_ms", ".1f"),
            ("torch ms", "torch_ms", ".1f"), ("torch cpu", "torch_cpu_ms", ".1f"),
            ("x naive", "vs_naive", ".2f"), ("x torch", "vs_torch", ".2f"),
            ("x torch cpu", "vs_torch_cpu", ".2f")]
    r0 = results[0]["rows"][0]
    torch_v = results[0]["torch"] or "not installed / not used"
    lines = [
        f"N={r0['N']} T={r0['T']} D={r0['D']} float64, forward + backward (full BPTT); ms = "
        "wall-clock median, best = fastest repeat, cpu = median process CPU time;",
        f"reference, naive, torch ({torch_v}) and the two rooflines are timed round-robin, "
        "so a busy moment of the machine hits them alike.",
        "FLOPs = 6*G*N*T*H*(D+H), matmuls only (G=1 RNN, 4 LSTM); GFLOP/s from the median.",
        f"peak = GFLOP/s of a large square float64 matmul ({results[0]['peak_M']}^3), the "
        "roofline; same = GFLOP/s of the recurrence-sized product (N,H)@(H,G*H), T times.",
        "x naive / x torch = their median wall time / the reference's (>1: the reference is "
        "faster); x torch cpu = the same with CPU time (1 thread only).",
        agreement(results),
        "Load average during the run: " + ", ".join(
            f"{res['threads']} thr {res['loadavg_start']}->{res['loadavg_end']}" for res in results)
        + f" on {os.cpu_count()} cores; large matmul alone at the start: " + ", ".join(
            f"{res['threads']} thr {res['peak_gflops']:.1f} GFLOP/s" for res in results) + ".",
        "",
        "Targets:",
    ]
    for t in targets(results, quick):
        if t["value"] is None:
            val = "n/a (torch not installed)"
        elif "torch" in t["target"]:
            val = f"{t['value']:.2f}x" + ("" if t.get("cpu_value") is None else
                                          f" (CPU time: {t['cpu_value']:.2f}x)")
        else:
            val = f"{t['value']:.0%} (of the same-shape rate: {t['same_shape_fraction']:.0%})"
        lines.append(f"  {t['target']}: {val} -> "
                     + ("n/a" if t["met"] is None else verdict(t["met"])))
    return table("Numerics: reference RNN / LSTM forward+backward", cols, rows, "\n".join(lines))


def run(quick=False, threads=(1, 2), out_dir=None, use_torch=True):
    """Run every thread setting, print the table, write numerics.json; returns the results."""
    t0 = time.perf_counter()
    results = [_run_child(th, quick, use_torch) for th in threads]
    text = render(results, quick)
    print(text, flush=True)
    data = {"benchmark": "numerics", "quick": quick, "machine": machine(),
            "results": results, "targets": targets(results, quick), "table": text,
            "seconds": time.perf_counter() - t0}
    write_json("numerics", data, out_dir)
    return data


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.numerics", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke test)")
    p.add_argument("--threads", default="1,2", help="BLAS thread counts, comma-separated")
    p.add_argument("--out-dir", default=None, help="where numerics.json goes (bench/results)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        res = child(args.child, args.quick, not args.no_torch)
        with open(args.out, "w") as f:
            json.dump(res, f)
        return 0
    run(args.quick, tuple(int(t) for t in args.threads.split(",")), args.out_dir,
        not args.no_torch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
