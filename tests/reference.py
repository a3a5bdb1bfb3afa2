"""Slow, obviously correct NumPy references straight from MATH.md, for tiny sizes only.

Nothing here is optimised or shared with the package: every formula is written out again
so that a kernel and its reference can only agree if both are right.
"""
import numpy as np
from scipy import integrate
from scipy.special import gammaln


def kappa(u, v):
    """κ(u, v) = ‖u‖‖v‖ J(γ)/(2π), J(γ) = sin γ + (π − γ) cos γ (MATH §2.1)."""
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return 0.0
    c = np.clip(u @ v / (nu * nv), -1.0, 1.0)
    g = np.arccos(c)
    return nu * nv * (np.sin(g) + (np.pi - g) * np.cos(g)) / (2 * np.pi)


def grad_kappa(u, v):
    """∇_u κ(u, v) = ((π − γ) v + ‖v‖ sin γ u/‖u‖)/(2π) (MATH §2.2)."""
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nv == 0:
        return np.zeros_like(u)
    c = np.clip(u @ v / (nu * nv), -1.0, 1.0)
    g = np.arccos(c)
    return ((np.pi - g) * v + nv * np.sin(g) * u / nu) / (2 * np.pi)


def interaction(b_out, b_src, c_src):
    S = np.array([sum(c * kappa(u, v) for v, c in zip(b_src, c_src)) for u in b_out])
    G = np.array([sum(c * grad_kappa(u, v) for v, c in zip(b_src, c_src)) for u in b_out])
    return S, G


def alpha(d_H):
    return 2 * np.sqrt(np.pi) * np.exp(gammaln((d_H + 1) / 2) - gammaln(d_H / 2))


def norm_target_T(b, d_H):
    """E[‖x_H‖ σ(⟨b,x⟩)] for x ∼ N(0, I): α ‖b‖ E_{t∼γ_{d_H}} J(arccos(t‖b_H‖/‖b‖))/(2π), with
    the expectation by adaptive quadrature of the density ∝ (1 − t²)^{(d_H−3)/2}."""
    nb = np.linalg.norm(b)
    c = np.linalg.norm(b[:d_H]) / nb

    def J(t):
        g = np.arccos(np.clip(t * c, -1, 1))
        return np.sin(g) + (np.pi - g) * np.cos(g)

    if d_H == 1:
        mean = 0.5 * (J(1.0) + J(-1.0))
    else:
        # t = cos φ turns the density ∝ (1 − t²)^{(d_H−3)/2} dt into ∝ sin^{d_H−2} φ dφ (smooth)
        dens = lambda p: np.sin(p) ** (d_H - 2)  # noqa: E731
        num = integrate.quad(lambda p: J(np.cos(p)) * dens(p), 0, np.pi, epsabs=1e-14,
                             epsrel=1e-13, limit=200)[0]
        den = integrate.quad(dens, 0, np.pi, epsabs=1e-14, epsrel=1e-13, limit=200)[0]
        mean = num / den
    return alpha(d_H) * nb * mean / (2 * np.pi)


def act(z, kind, slope=0.01):
    return {"relu": np.maximum(z, 0), "linear": z, "leaky_relu": np.where(z > 0, z, slope * z),
            "tanh": np.tanh(z)}[kind]


def act_prime(z, kind, slope=0.01):
    return {"relu": (z > 0).astype(float), "linear": np.ones_like(z),
            "leaky_relu": np.where(z > 0, 1.0, slope), "tanh": 1 - np.tanh(z) ** 2}[kind]


def sampled_gradients(x, y, a, b, w, kind="relu"):
    """Dense NumPy batch gradients of V and the batch risk."""
    z = x @ b.T  # (n, m)
    f = act(z, kind) @ (w * a)
    r = f - y
    ga = (r[:, None] * act(z, kind)).mean(0)
    gb = a[:, None] * ((r[:, None] * act_prime(z, kind)).T @ x) / x.shape[0]
    return ga, gb, 0.5 * np.mean(r * r)


def finite_difference_gradient(fun, a, b, h=1e-6):
    """Central differences of a scalar function of (a, b)."""
    ga = np.zeros_like(a)
    gb = np.zeros_like(b)
    for j in range(a.size):
        ap, am = a.copy(), a.copy()
        ap[j] += h
        am[j] -= h
        ga[j] = (fun(ap, b) - fun(am, b)) / (2 * h)
    for idx in np.ndindex(b.shape):
        bp, bm = b.copy(), b.copy()
        bp[idx] += h
        bm[idx] -= h
        gb[idx] = (fun(a, bp) - fun(a, bm)) / (2 * h)
    return ga, gb


def reduced_interaction(z_out, z_src, c_src, n_explicit, nodes, weights):
    """Σ_k c_k κ̃(z_i, z'_k) and its gradient in z_i = (y_i, r_i) (MATH §5), by building, at
    every quadrature node t = (t_1..t_R), explicit vectors with the stated geometry:
    b = (y, r_1, 0, …, r_R, 0) and b' = (y', r'_1 t_1, r'_1 √(1 − t_1²), …), so that
    ‖b‖² = ‖y‖² + Σ r_l² and ⟨b, b'⟩ = ⟨y, y'⟩ + Σ_l r_l r'_l t_l; κ by MATH §2.1 (arccos),
    its gradient by §2.2, and ∂/∂r_l the gradient's component along b's slot of r_l.
    Vectorised over pairs, one node at a time; rows with z_i = 0 are not supported."""
    z_out = np.asarray(z_out, dtype=float)
    z_src = np.asarray(z_src, dtype=float)
    p = int(n_explicit)
    n_red = z_out.shape[1] - p
    S = np.zeros(z_out.shape[0])
    G = np.zeros(z_out.shape)
    for t, wt in zip(np.atleast_2d(nodes), weights):
        u = [z_out[:, :p]]
        v = [z_src[:, :p]]
        for l in range(n_red):
            u += [z_out[:, p + l:p + l + 1], np.zeros((z_out.shape[0], 1))]
            v += [z_src[:, p + l:p + l + 1] * t[l],
                  z_src[:, p + l:p + l + 1] * np.sqrt(max(1.0 - t[l] ** 2, 0.0))]
        u = np.hstack(u)[:, None, :]  # (m, 1, D)
        v = np.hstack(v)[None, :, :]  # (1, n, D)
        nu = np.linalg.norm(u, axis=-1)
        nv = np.linalg.norm(v, axis=-1)
        cos = np.clip(np.sum(u * v, axis=-1) / np.maximum(nu * nv, 1e-300), -1.0, 1.0)
        g = np.arccos(cos)
        kap = nu * nv * (np.sin(g) + (np.pi - g) * np.cos(g)) / (2 * np.pi)
        grad = ((np.pi - g)[..., None] * v + (nv * np.sin(g) / nu)[..., None] * u) / (2 * np.pi)
        S += wt * (kap @ np.asarray(c_src, dtype=float))
        gsum = np.einsum("mnd,n->md", grad, np.asarray(c_src, dtype=float))
        G[:, :p] += wt * gsum[:, :p]
        G[:, p:] += wt * gsum[:, p::2][:, :n_red]
    return S, G
