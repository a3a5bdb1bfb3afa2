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



def norm_target_risk(a, b, w, d_H):
    """F = ½ E(f − ‖x_H‖)² for x ∼ N(0, I): ½(Σ_ij c_i c_j κ(b_i, b_j) − 2 Σ_i c_i T(b_i) + d_H)
    with c = w a (E‖x_H‖² = d_H)."""
    c = np.asarray(w) * np.asarray(a)
    S, _ = interaction(b, b, c)
    T = np.array([norm_target_T(u, d_H) for u in b])
    return 0.5 * (c @ S - 2.0 * c @ T + d_H)

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


# ------------------------------------------------------------------ Hessian of the risk (issue 18)
def _angle_frame(u, v):
    """γ, û, v̂ and the unit vector p_v of u's part orthogonal to v (zero if parallel)."""
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    uh, vh = u / nu, v / nv
    c = np.clip(uh @ vh, -1.0, 1.0)
    g = np.arccos(c)
    pv = uh - c * vh
    npv = np.linalg.norm(pv)
    pv = pv / npv if npv > 1e-12 else np.zeros_like(u)
    pu = vh - c * uh
    npu = np.linalg.norm(pu)
    pu = pu / npu if npu > 1e-12 else np.zeros_like(u)
    return g, nu, nv, uh, vh, pu, pv


def hess11_kappa(u, v):
    """∇²_uu κ(u, v) = E[δ(⟨u,x⟩) σ(⟨v,x⟩) x xᵀ] = ‖v‖ sin γ/(2π‖u‖) [(I − ûûᵀ) + p pᵀ],
    p the unit vector of v's part orthogonal to u (Gaussian conditioning on ⟨u,x⟩ = 0)."""
    g, nu, nv, uh, vh, pu, pv = _angle_frame(u, v)
    d = u.size
    return nv * np.sin(g) / (2 * np.pi * nu) * (np.eye(d) - np.outer(uh, uh) + np.outer(pu, pu))


def hess12_kappa(u, v):
    """∂_v ∇_u κ(u, v) = E[σ'(⟨u,x⟩) σ'(⟨v,x⟩) x xᵀ]
    = [(π − γ) I + sin γ cos γ (v̂v̂ᵀ − p pᵀ) + sin²γ (v̂ pᵀ + p v̂ᵀ)]/(2π), p ⊥ v in span(u, v)."""
    g, nu, nv, uh, vh, pu, pv = _angle_frame(u, v)
    d = u.size
    s, c = np.sin(g), np.cos(g)
    return ((np.pi - g) * np.eye(d) + s * c * (np.outer(vh, vh) - np.outer(pv, pv))
            + s * s * (np.outer(vh, pv) + np.outer(pv, vh))) / (2 * np.pi)


def risk_hessian(a, b, w, teacher_a, teacher_b):
    """∇²_θ F for a ReLU teacher (no linear part), x ∼ N(0, I), by loops over the blocks
    (order a_1..a_m, then b_1..b_m row by row)."""
    m, d = b.shape
    n = m * (d + 1)
    H = np.zeros((n, n))
    S_grad = [sum(w[l] * a[l] * grad_kappa(b[j], b[l]) for l in range(m)) for j in range(m)]
    T_grad = [sum(teacher_a[k] * grad_kappa(b[j], teacher_b[k]) for k in range(len(teacher_a)))
              for j in range(m)]
    T_hess = [sum(teacher_a[k] * hess11_kappa(b[j], teacher_b[k])
                  for k in range(len(teacher_a))) for j in range(m)]

    def bi(j):
        return slice(m + j * d, m + (j + 1) * d)

    for j in range(m):
        for k in range(m):
            H[j, k] = w[j] * w[k] * kappa(b[j], b[k])
            ab = w[j] * w[k] * a[k] * grad_kappa(b[k], b[j])
            if j == k:
                ab = ab + w[j] * (S_grad[j] - T_grad[j])
            H[j, bi(k)] = ab
            H[bi(k), j] = ab
            if j == k:
                # ∂²/∂b_j² of κ(b_j, b_j) through both arguments: ∇²_11 + ∇²_12 at u = v is I/2
                inner = sum(w[l] * a[l] * hess11_kappa(b[j], b[l]) for l in range(m) if l != j)
                bb = w[j] * a[j] * (inner - T_hess[j] + w[j] * a[j] * np.eye(d) / 2)
            else:
                bb = w[j] * a[j] * w[k] * a[k] * hess12_kappa(b[j], b[k])
            H[bi(j), bi(k)] = bb
    return H


def norm_target_hessian_dH2(b, n_phi=4000):
    """∇²_b E[‖x_H‖ σ(⟨b,x⟩)] for d_H = 2: α E_φ ∇²_11κ(b, (cos φ, sin φ, 0, …)) by the
    trapezoidal rule in φ (periodic and smooth: spectral accuracy), α(2) = π."""
    d = b.size
    out = np.zeros((d, d))
    for phi in np.linspace(0, 2 * np.pi, n_phi, endpoint=False):
        v = np.zeros(d)
        v[0], v[1] = np.cos(phi), np.sin(phi)
        out += hess11_kappa(b, v)
    return np.pi * out / n_phi
