"""The k smallest eigenvalues of H at 10⁵–10⁶ parameters: LOBPCG with a two-level
preconditioner built from the per-particle blocks.

Why not plain Lanczos. H is a sum of a block-diagonal part (one (d + 1) × (d + 1) block per
particle, O(1) entries) and pair couplings of size O(1/m) each. The bottom of the spectrum is
a band of about m eigenvalues, one (or a few) per particle, whose order inside the band is set
by the couplings; near a flow's end it is the cluster of near-zero modes. Lanczos on H (or
on H + λ_max I) needs many hundreds of products to resolve the edge of such a band
(:func:`meanfield.hessian.spectrum`, ``method='lanczos'``), each product costing
O(m² d).

What is done instead (``method='lobpcg'``):

1. The pair geometry is stored (:class:`~meanfield.hessian.stored.StoredHessian`, 4 m²
   doubles), so products come in blocks through BLAS, and the diagonal blocks B_j of H are
   formed exactly (optionally with particle j's rescaling direction u_j ∝ (a_j, −b_j)
   deflated: P_j B_j P_j, P_j = I − u_j u_jᵀ).
2. Coarse space: V = the lowest eigenvector v_j of each B_j (one column per particle). The
   m × m matrix C = Vᵀ H V is formed exactly from the stored geometry in O(m² d)
   (:meth:`~meanfield.hessian.stored.StoredHessian.coarse_matrix`); its lowest eigenpairs
   (shift-invert Lanczos on a Cholesky factor of C − σI, products of size m²) give the
   Rayleigh–Ritz start X₀ = V Y. Without a single product by H this is already within
   ~1e-4 of λ_max of the band's edge in the tests.
3. LOBPCG (``scipy.sparse.linalg.lobpcg``) from X₀ with the SPD two-level preconditioner
   T = V (C − σI)⁻¹ Vᵀ + Q |B − σ_b I|⁻¹ Q (Q = I − V Vᵀ, |·| per block through its
   eigendecomposition; σ below the band's edge), each iteration one block product.

With ``deflate_rescaling`` the operator is P H P + L (I − P) (P = I − Σ_j u_j u_jᵀ, L above
the spectrum) and every iterate stays in the range of P: the k smallest eigenvalues of H on
the complement of the m rescaling directions (zero modes at any critical point).
"""
import time

import numpy as np

from .stored import StoredHessian

__all__ = ["smallest_lobpcg"]


def _to_particles(X, m, d):
    """(n, p) in the order (a..., b rows) -> (m, d + 1, p)."""
    p = X.shape[1]
    return np.concatenate([X[:m][:, None, :], X[m:].reshape(m, d, p)], axis=1)


def _from_particles(Z, m, d):
    """(m, d + 1, p) -> (n, p)."""
    return np.concatenate([Z[:, 0, :], Z[:, 1:, :].reshape(m * d, Z.shape[2])], axis=0)


def smallest_lobpcg(op, k, deflate_rescaling=False, rtol=1e-8, maxiter=40, stored=None,
                    scale=None, log=None):
    """The k smallest eigenvalues of H (module docstring).

    Parameters
    ----------
    op : HessianOperator
    k : int
        Number of eigenvalues (the LOBPCG block size).
    deflate_rescaling : bool
        On the complement of the m rescaling directions.
    rtol : float
        Stop when every residual ‖H x − λ x‖ ≤ rtol · scale.
    maxiter : int
        LOBPCG iterations.
    stored : StoredHessian, optional
        Reuse stored pair geometry (else built here).
    scale : float, optional
        max |λ| of H (the largest eigenvalue); default: the largest |eigenvalue| of the
        diagonal blocks (a lower bound of it).
    log : callable, optional
        One line per stage.

    Returns
    -------
    dict: ``smallest`` (k ascending), ``residuals`` (k, ‖H x − λ x‖ of each), ``coarse``
    (the k smallest Rayleigh–Ritz values of the coarse space: the start), ``n_products``
    (vectors multiplied by H), ``iterations``, ``seconds`` and per-stage ``seconds_store``,
    ``seconds_coarse`` (itself ``seconds_blocks``, ``seconds_coarse_matrix``,
    ``seconds_cholesky`` for ``n_cholesky`` factorisations, and the coarse eigensolve),
    ``seconds_lobpcg``; ``stored`` (the StoredHessian).
    """
    import scipy.linalg as sla
    from scipy.sparse.linalg import LinearOperator, eigsh, lobpcg

    say = log or (lambda msg: None)
    t_start = time.perf_counter()
    m, d, n = op.m, op.d, op.n
    if not 1 <= k < m:
        raise ValueError(f"k must be between 1 and m - 1 = {m - 1}, got {k}")
    S = stored if stored is not None else StoredHessian(op)
    n0 = S.n_products
    t_store = time.perf_counter() - t_start
    say(f"  stored pair geometry: {t_store:.1f} s")
    t0 = time.perf_counter()
    Bl = S.blocks()
    d1 = d + 1
    eye = np.eye(d1)
    if deflate_rescaling:
        from . import rescaling_directions

        U = rescaling_directions(op.a, op.b)
        uu = np.einsum("ja,jb->jab", U, U)
        P = eye[None] - uu
        big = 10.0 * float(np.abs(np.linalg.eigvalsh(Bl)).max()) + 1.0
        Bl = P @ Bl @ P + big * uu
    lam_b, vec_b = np.linalg.eigh(Bl)                  # (m, d + 1) ascending
    t_blocks = time.perf_counter() - t0
    if scale is None:
        scale = float(np.abs(lam_b[:, :-1] if deflate_rescaling else lam_b).max())
    lift = 10.0 * scale + 1.0                          # L: above the whole spectrum
    V = np.ascontiguousarray(vec_b[:, :, 0])           # coarse space, (m, d + 1)
    if op.linear:
        C = None
    else:
        C = S.coarse_matrix(V)
    t_cmat = time.perf_counter() - t0 - t_blocks
    # σ below the coarse spectrum: start a little below the smallest diagonal entry (an upper
    # bound of λ_min(C)) and widen the margin until C − σI has a Cholesky factor. (Lanczos for
    # λ_min(C) itself meets the same dense band as on H: not used.)
    c_min = float(np.min(np.diag(C))) if C is not None else float(lam_b[:, 0].min())
    margin = 1e-3 * scale
    sigma = c_min - margin
    n_chol = 0
    diag = np.arange(m)
    while C is not None:
        n_chol += 1
        shifted = C.copy()
        shifted[diag, diag] -= sigma
        try:
            chol = sla.cho_factor(shifted, lower=True, overwrite_a=True, check_finite=False)
            break
        except np.linalg.LinAlgError:   # σ not below the spectrum yet: widen
            margin *= 4.0
            sigma = c_min - margin
    t_chol = time.perf_counter() - t0 - t_blocks - t_cmat
    if C is not None:
        opinv = LinearOperator((m, m), matvec=lambda x: sla.cho_solve(chol, x), dtype=np.float64)
        mu, Y = eigsh(C, k=k, sigma=sigma, which="LM", OPinv=opinv, tol=1e-12,
                      v0=np.ones(m))
        order = np.argsort(mu)
        mu, Y = mu[order], Y[:, order]
        Z = V[:, :, None] * Y[:, None, :]
    else:   # no coupling formula: the k lowest block eigenvectors
        order = np.argsort(lam_b[:, 0])[:k]
        mu = lam_b[order, 0]
        Z = np.zeros((m, d1, k))
        Z[order, :, np.arange(k)] = V[order]
    X0 = _from_particles(Z, m, d)
    t_coarse = time.perf_counter() - t0
    say(f"  coarse space: {m} columns, Rayleigh–Ritz start {mu[0]:.6e} .. {mu[-1]:.6e}, "
        f"σ = {sigma:.6e} after {n_chol} Cholesky factorisations ({t_coarse:.1f} s: blocks "
        f"{t_blocks:.1f}, Vᵀ H V {t_cmat:.1f}, Cholesky {t_chol:.1f}, eigsh "
        f"{t_coarse - t_blocks - t_cmat - t_chol:.1f})")
    # block part of the preconditioner: |B_j − σ_b|^{-1} on the complement of v_j
    sigma_b = min(sigma, float(lam_b[:, 0].min())) - margin
    T = np.einsum("jab,jb,jcb->jac", vec_b, 1.0 / np.abs(lam_b - sigma_b), vec_b)
    Q = eye[None] - np.einsum("ja,jb->jab", V, V)
    if deflate_rescaling:
        Q = Q - uu
    T = Q @ T @ Q

    def precondition(X):
        X = X.reshape(n, -1)
        Zx = _to_particles(X, m, d)
        out = np.einsum("jab,jbp->jap", T, Zx)
        if C is not None:
            c = np.einsum("ja,jap->jp", V, Zx)
            out += V[:, :, None] * sla.cho_solve(chol, c)[:, None, :]
        return _from_particles(out, m, d)

    if deflate_rescaling:
        def apply(X):
            X = X.reshape(n, -1)
            Zx = _to_particles(X, m, d)
            c = np.einsum("jap,ja->jp", Zx, U)
            Px = _from_particles(Zx - U[:, :, None] * c[:, None, :], m, d)
            Zh = _to_particles(S.matmat(Px), m, d)
            ch = np.einsum("jap,ja->jp", Zh, U)
            out = Zh - U[:, :, None] * ch[:, None, :] + lift * U[:, :, None] * c[:, None, :]
            return _from_particles(out, m, d)
    else:
        def apply(X):
            return S.matmat(X.reshape(n, -1))

    A = LinearOperator((n, n), matvec=lambda x: apply(x).ravel(), matmat=apply,
                       dtype=np.float64)
    M = LinearOperator((n, n), matvec=lambda x: precondition(x).ravel(), matmat=precondition,
                       dtype=np.float64)
    t0 = time.perf_counter()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # "did not reach tolerance": reported
        ev, _, lam_hist, res_hist = lobpcg(A, X0, M=M, largest=False, tol=rtol * scale,
                                           maxiter=maxiter, retLambdaHistory=True,
                                           retResidualNormsHistory=True)
    t_lob = time.perf_counter() - t0
    order = np.argsort(ev)
    residuals = np.asarray(res_hist[-1])[order]
    say(f"  LOBPCG: {len(res_hist) - 1} iterations, {S.n_products - n0} products, largest "
        f"residual {residuals.max():.2e} ({t_lob:.1f} s)")
    return {"smallest": ev[order], "residuals": residuals, "coarse": mu,
            "n_products": S.n_products - n0, "iterations": len(res_hist) - 1,
            "converged": bool(residuals.max() <= rtol * scale), "scale": scale,
            "seconds": time.perf_counter() - t_start, "seconds_store": t_store,
            "seconds_coarse": t_coarse, "seconds_lobpcg": t_lob, "seconds_blocks": t_blocks,
            "seconds_coarse_matrix": t_cmat, "seconds_cholesky": t_chol, "n_cholesky": n_chol,
            "stored": S}
