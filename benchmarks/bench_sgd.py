"""What a user would otherwise run: SGD on a 1/m-scaled two-layer network in PyTorch, against
meanfield's sampled (online SGD) and exact backends — accuracy per second, not steps.

Problem: x ∼ N(0, I_d), a teacher of 4 ReLU units (as bench_velocity), m particles from
``init_gaussian``, PDE time T, step η (time η per step = gradient descent with learning
rate m·η). Every implementation starts from the same particles. The reference is the
exact flow integrated by RK4 with step η/4 (its own error is far below the others').

Reported per implementation: wall seconds per unit of PDE time (``median_s`` in JSON:
median over ``--repeat`` runs), the relative particle error at T, ‖θ(T) − θ_ref(T)‖/‖θ_ref(T)‖
(``rel_err``), and the error of the exact risk at T. ``pairs_per_s`` is m² × evaluations per
second for the exact backend and null for the sampled ones (they do n·m work per step).

* ``torch-sgd``: float64 nn with 1/m output scaling, fresh batches of ``--batch`` from
  torch's generator, plain SGD with learning rate m·η (autograd).
* ``meanfield-sampled``: ``simulate(..., backend="sampled", batch_size=...)`` — the same
  algorithm (online SGD on fresh Gaussian batches).
* ``meanfield-exact``: ``simulate(..., backend="exact")`` (Euler, step η): no sampling noise.
* ``meanfield-exact-heun``: Heun at step η: second order, two evaluations per step.

Run (about a minute)::

    python benchmarks/bench_sgd.py
    python benchmarks/bench_sgd.py --m 1024 --d 20 --T 5
    python benchmarks/bench_sgd.py --smoke --json
"""
import argparse
import importlib.util
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import Output, load_average, machine_lines, parse_list  # noqa: E402


def torch_sgd(problem, teacher, particles, eta, n_steps, batch, threads, seed):
    import torch
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(seed)
    m, d = particles.b.shape
    a = torch.tensor(particles.a, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(particles.b, dtype=torch.float64, requires_grad=True)
    ta = torch.tensor(teacher.a, dtype=torch.float64)
    tb = torch.tensor(teacher.b, dtype=torch.float64)
    lr = m * eta
    for _ in range(n_steps):
        x = torch.randn(batch, d, generator=gen, dtype=torch.float64)
        y = torch.relu(x @ tb.T) @ ta
        f = torch.relu(x @ b.T) @ a / m
        loss = 0.5 * ((f - y) ** 2).mean()
        ga, gb = torch.autograd.grad(loss, (a, b))
        with torch.no_grad():
            a -= lr * ga
            b -= lr * gb
    return a.detach().numpy().copy(), b.detach().numpy().copy()


def meanfield_run(problem, particles, eta, n_steps, backend, integrator, batch, seed):
    import meanfield as mf
    res = mf.simulate_flow(problem, particles, dt=eta, n_steps=n_steps, integrator=integrator,
                      backend=backend, batch_size=batch, seed=seed, record_every=n_steps)
    return res.particles.a, res.particles.b


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--m", default="512", help="comma list of widths")
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--T", type=float, default=2.0, help="PDE time")
    parser.add_argument("--eta", type=float, default=0.01, help="step (PDE time per step)")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--peers", default="torch", help="torch or none")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.m, args.T, args.repeat, args.peers = "64", 0.1, 1, "none"
    import numba
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    from bench_velocity import make_problem
    from meanfield.models.backends import ExactBackend

    out = Output(args.json)
    for line in machine_lines(numba.get_num_threads()):
        out.say(line)
    n_steps = int(round(args.T / args.eta))
    for m in parse_list(args.m):
        problem, teacher, particles = make_problem(m, args.d)
        exact = ExactBackend(problem)
        a_ref, b_ref = meanfield_run(problem, particles, args.eta / 4, 4 * n_steps, "exact",
                                     "rk4", None, 0)
        risk_ref = exact.risk(a_ref, b_ref, particles.weights)
        ref_norm = np.sqrt(np.sum(a_ref ** 2) + np.sum(b_ref ** 2))
        out.say(f"m = {m}, d = {args.d}, T = {args.T}, η = {args.eta} ({n_steps} steps), "
                f"batch {args.batch}; reference RK4 at η/4: F(T) = {risk_ref:.6f} "
                f"(F(0) = {exact.risk(particles.a, particles.b, particles.weights):.6f}); "
                f"load {load_average():.2f}")
        out.say(f"  {'implementation':<22} {'s per unit time':>15} {'particle err':>12} "
                f"{'|F(T)-F_ref|':>12}  note")
        runs = [("meanfield-exact", lambda s: meanfield_run(problem, particles, args.eta, n_steps,
                                                            "exact", "euler", None, s), 1),
                ("meanfield-exact-heun", lambda s: meanfield_run(
                    problem, particles, args.eta, n_steps, "exact", "heun", None, s), 2),
                ("meanfield-sampled", lambda s: meanfield_run(problem, particles, args.eta,
                                                              n_steps, "sampled", "euler",
                                                              args.batch, s), 0)]
        if args.peers != "none":
            if importlib.util.find_spec("torch") is None:
                out.say("  skipped torch-sgd: torch not installed; pip install -e .[bench]")
            else:
                runs.append(("torch-sgd", lambda s: torch_sgd(
                    problem, teacher, particles, args.eta, n_steps, args.batch, args.threads,
                    s), 0))
        for name, run, evals in runs:
            run(99)  # warm-up: compilation, thread pools
            times, errs, risk_errs = [], [], []
            for rep in range(max(1, args.repeat)):
                t0 = time.perf_counter()
                a, b = run(rep)
                times.append(time.perf_counter() - t0)
                dist = np.sqrt(np.sum((a - a_ref) ** 2) + np.sum((b - b_ref) ** 2))
                errs.append(dist / ref_norm)
                risk_errs.append(abs(exact.risk(a, b, particles.weights) - risk_ref))
            per_unit = float(np.median(times)) / args.T
            err, risk_err = float(np.median(errs)), float(np.median(risk_errs))
            out.say(f"  {name:<22} {per_unit:>15.4f} {err:>12.2e} {risk_err:>12.2e}  "
                    f"median of {len(times)} (seeds differ for SGD)")
            if args.json:
                import json
                pps = m * m * evals * n_steps / (per_unit * args.T) if evals else None
                print(json.dumps({"implementation": name, "m": m, "d": args.d,
                                  "median_s": per_unit, "pairs_per_s": pps, "rel_err": err}),
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
