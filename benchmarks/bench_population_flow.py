"""The symmetric-Boolean population flow: its compiled Euler loop against the engine's loop.

Run::

    NUMBA_NUM_THREADS=1 python benchmarks/bench_population_flow.py

Prints microseconds per Euler step (medians of 3, compile apart) of
``meanfield.systems.boolean.population_flow`` (n = 20, k = 64, parity) and of the same flow
as an engine Field (state rows (u_i, c_i, a_i, b), NumPy velocity
``population_gradient``) stepped by ``Solver(field, y0, "euler")``, and the load average.
"""
import os
import time
import numpy as np
from meanfield.systems import boolean as bl
from meanfield.engine import Field, Solver

n, k, dt = 20, 64, 0.002
g = bl.target_labels("parity", n, seed=1)
net = bl.init_network("invariant", n, k, np.random.default_rng([0, 0, 0, 1]))
bl.population_flow(net, g, dt, 10, record_every=10)  # compile
N = 20000
ts = []
for _ in range(3):
    t0 = time.perf_counter(); bl.population_flow(net, g, dt, N, record_every=1000); ts.append(time.perf_counter() - t0)
print(f"compiled loop: {np.median(ts) / N * 1e6:.2f} us/step")

class PopField(Field):
    names = ("p",)   # rows (u_i, c_i, a_i, b): the shared bias b repeated on every row
    def __init__(self, g, k):
        super().__init__(np.full(k, 1.0 / k)); self.g = g
    def velocity(self, y, t):
        p = y[0]
        du, dc, da, db = bl.population_gradient(p[:, 0], p[:, 1], p[:, 2], p[0, 3], self.g)
        return (-np.stack([du, dc, da, np.full(len(du), db)], axis=1),), 0.0

u, c, a, b = bl.invariant_coordinates(net)
y0 = (np.stack([u, c, a, np.full(k, b)], axis=1),)
M = 5000
ts = []
for _ in range(3):
    s = Solver(PopField(g, k), y0, "euler", dt=dt, n_steps=M, record_every=1000)
    t0 = time.perf_counter(); s.advance(); ts.append(time.perf_counter() - t0)
print(f"engine loop (NumPy velocity): {np.median(ts) / M * 1e6:.2f} us/step")
# the velocity alone
t0 = time.perf_counter()
for _ in range(M):
    bl.population_gradient(u, c, a, b, g)
print(f"NumPy velocity alone: {(time.perf_counter() - t0) / M * 1e6:.2f} us/call")
print(f"load average {os.getloadavg()[0]:.1f} (shared machine)")
