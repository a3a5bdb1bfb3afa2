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
3. LOBPCG (:func:`block_lobpcg`) from X₀ with the SPD two-level preconditioner
   T = V (C − σI)⁻¹ Vᵀ + Q |B − σ_b I|⁻¹ Q (Q = I − V Vᵀ, |·| per block through its
   eigendecomposition; σ below the band's edge), each iteration one block product of the
   unconverged residuals. The block carries ``guard`` vectors beyond the k wanted and the
   iteration stops when the k smallest Ritz pairs have converged: inside a dense band the
   convergence rate of the k-th pair is set by the gap to the first eigenvalue outside the
   block, and a few guard vectors move that gap from λ_{k+1} − λ_k to λ_{k+g+1} − λ_k (at
   m = 500, d = 30 the 20 smallest converged to 1e-6 in 18 iterations with 5 guards and in 51
   without; scipy's lobpcg had not converged them after 60). ``scipy.sparse.linalg.lobpcg`` has no such stopping rule (it waits for the
   whole block) and spends ~0.3 s per iteration at n = 1.5·10⁴ outside the products, so the
   iteration is written out here (Rayleigh–Ritz on [X, W, P] with an eigenvalue-based
   orthonormalisation that drops dependent directions).

The coarse eigenvalues come from shift-invert Lanczos (ARPACK) on C with the Cholesky factor
of C − σI; σ starts below the smallest diagonal entry of C and moves down until the
factorisation exists.

Threads: everything after storing runs with BLAS on one thread; the block products are
parallel over row tasks of :class:`~meanfield.hessian.stored.StoredHessian` instead. On the
2-core test machine OpenBLAS's own two threads made the solver's small and tall-skinny
products 4–16× slower than one thread (Gram matrices of n × 25 blocks: 0.19 s against
0.012 s at n = 62 000; a Cholesky factor of order 4 000: 3.7 s against 0.9 s), and the
results cannot depend on BLAS's thread count this way.

With ``deflate_rescaling`` the operator is P H P + L (I − P) (P = I − Σ_j u_j u_jᵀ, L above
the spectrum) and every iterate stays in the range of P: the k smallest eigenvalues of H on
the complement of the m rescaling directions (zero modes at any critical point).
"""
import time

import numpy as np

from ..kernels.threads import blas_single_thread
from .stored import StoredHessian

__all__ = ["smallest_lobpcg", "block_lobpcg"]


def _orthonormal(S, AS=None, drop=1e-10):
    """Orthonormal basis of the columns of S (and A times it, from AS) through the
    eigendecomposition of SᵀS; directions with eigenvalue below ``drop`` × the largest are
    dropped (dependent columns). Returns (S', AS' or None)."""
    G = S.T @ S
    lam, U = np.linalg.eigh(0.5 * (G + G.T))
    keep = lam > drop * max(lam[-1], 1e-300)
    T = U[:, keep] / np.sqrt(lam[keep])
    return S @ T, (AS @ T if AS is not None else None)


def block_lobpcg(apply, precondition, X0, k, tol, maxiter, log=None):
    """The k smallest eigenpairs of a symmetric operator by block LOBPCG with guard vectors.

    Parameters
    ----------
    apply : callable
        (n, p) -> A times it (A symmetric).
    precondition : callable
        (n, p) -> T times it (T symmetric positive definite, ≈ (A − σ)⁻¹).
    X0 : (n, b) array
        Start block, b ≥ k (the columns beyond k are guard vectors).
    k : int
        Number of wanted pairs: the iteration stops when the k smallest Ritz pairs have
        residuals ‖A x − θ x‖ ≤ tol (x of unit norm).
    tol : float
    maxiter : int
    log : callable, optional

    Returns
    -------
    dict: ``values`` (k ascending Ritz values), ``vectors`` (n, k), ``residuals`` (k,),
    ``iterations``, ``converged``, ``n_products``, ``history`` (per iteration: the b Ritz
    values and their residuals).

    Notes
    -----
    Each iteration: residuals R = AX − XΘ; W = T R of the unconverged columns (converged ones
    are soft-locked: they stay in X and in the Rayleigh–Ritz, but get no new direction);
    W and the previous direction P orthogonalised against X and orthonormalised
    (:func:`_orthonormal`); A W is the one block product; the Rayleigh–Ritz of A on
    [X, W, P] gives the new X (the b lowest) and P (their components along W and P).
    """
    n_products = 0
    X, AX = _orthonormal(X0)[0], None
    b = X.shape[1]
    if b < k:
        raise ValueError(f"the start block has {b} independent columns, fewer than k = {k}")
    AX = apply(X)
    n_products += b
    G = X.T @ AX
    theta, Y = np.linalg.eigh(0.5 * (G + G.T))
    X, AX = X @ Y, AX @ Y
    P = AP = None
    history = []
    converged = False
    it = 0
    while True:
        R = AX - X * theta
        res = np.linalg.norm(R, axis=0)
        history.append((theta.copy(), res.copy()))
        if np.all(res[:k] <= tol):
            converged = True
            break
        if it >= maxiter:
            break
        it += 1
        active = res > tol
        W = precondition(R[:, active])
        for _ in range(2):   # twice is enough (Kahan)
            W -= X @ (X.T @ W)
        W, _ = _orthonormal(W)
        if W.shape[1] == 0:
            break
        AW = apply(W)
        n_products += W.shape[1]
        blocks, ablocks = [X, W], [AX, AW]
        if P is not None:
            for _ in range(2):
                c1, c2 = X.T @ P, W.T @ P
                P = P - X @ c1 - W @ c2
                AP = AP - AX @ c1 - AW @ c2
            P, AP = _orthonormal(P, AP)
            if P.shape[1]:
                blocks.append(P)
                ablocks.append(AP)
        S = np.concatenate(blocks, axis=1)
        AS = np.concatenate(ablocks, axis=1)
        G = S.T @ AS
        theta_all, Y = np.linalg.eigh(0.5 * (G + G.T))
        Y = Y[:, :b]
        theta = theta_all[:b]
        Yrest = Y[b:]
        P = S[:, b:] @ Yrest
        AP = AS[:, b:] @ Yrest
        X = S @ Y
        AX = AS @ Y
        if log is not None:
            log(f"    iteration {it}: {int(np.sum(res[:k] > tol))} of the {k} wanted "
                f"unconverged, largest residual {res[:k].max():.2e}, {n_products} products")
    return {"values": theta[:k], "vectors": X[:, :k], "residuals": res[:k], "iterations": it,
            "converged": converged, "n_products": n_products, "history": history}


def _to_particles(X, m, d):
    """(n, p) in the order (a..., b rows) -> (m, d + 1, p)."""
    p = X.shape[1]
    return np.concatenate([X[:m][:, None, :], X[m:].reshape(m, d, p)], axis=1)


def _from_particles(Z, m, d):
    """(m, d + 1, p) -> (n, p)."""
    return np.concatenate([Z[:, 0, :], Z[:, 1:, :].reshape(m * d, Z.shape[2])], axis=0)


def smallest_lobpcg(op, k, deflate_rescaling=False, rtol=1e-8, maxiter=40, stored=None,
                    scale=None, log=None, dtype=np.float64, guard=None):
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
    guard : int, optional
        Extra block vectors beyond k (default max(4, k // 4); at most m − 1 − k).
    dtype : numpy dtype
        Precision of the stored pair matrices when they are built here
        (:class:`~meanfield.hessian.stored.StoredHessian`; float32 halves memory and product
        time, with product errors of order 1e-8 of ‖Hx‖).

    Returns
    -------
    dict: ``smallest`` (k ascending), ``residuals`` (k, ‖H x − λ x‖ of each), ``coarse``
    (the k smallest Rayleigh–Ritz values of the coarse space: the start), ``n_products``
    (vectors multiplied by H), ``iterations``, ``seconds`` and per-stage ``seconds_store``,
    ``seconds_coarse`` (itself ``seconds_blocks``, ``seconds_coarse_matrix``,
    ``seconds_cholesky`` for ``n_cholesky`` factorisations, and the coarse eigensolve),
    ``seconds_lobpcg``; ``stored`` (the StoredHessian).
    """
    t_start = time.perf_counter()
    m = op.m
    if not 1 <= k < m:
        raise ValueError(f"k must be between 1 and m - 1 = {m - 1}, got {k}")
    S = stored if stored is not None else StoredHessian(op, dtype=dtype)
    # BLAS with one thread from here on: OpenBLAS's threads made the small and tall-skinny
    # products of this solver (Gram matrices of n × b blocks, batched (d+1)² eigh, the
    # Cholesky factor) 4–16× slower on the 2-core test machine (benchmarks/README.md); the
    # block products are parallel over row tasks instead (StoredHessian).
    with blas_single_thread():
        return _smallest(op, k, deflate_rescaling, rtol, maxiter, S, scale, log, guard, t_start)


def _smallest(op, k, deflate_rescaling, rtol, maxiter, S, scale, log, guard, t_start):
    """The body of :func:`smallest_lobpcg` (same arguments; S the stored products)."""
    import scipy.linalg as sla
    from scipy.sparse.linalg import LinearOperator, eigsh

    say = log or (lambda msg: None)
    m, d, n = op.m, op.d, op.n
    kb = k + max(0, min(max(4, k // 4) if guard is None else int(guard), m - 1 - k))
    n0 = S.n_products
    t_store = S.seconds_store      # where it was built (here or by the caller)
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
        opinv = LinearOperator((m, m), dtype=np.float64,
                               matvec=lambda x: sla.cho_solve(chol, x, check_finite=False))
        mu, Y = eigsh(C, k=kb, sigma=sigma, which="LM", OPinv=opinv, tol=1e-8,
                      v0=np.ones(m))
        order = np.argsort(mu)
        mu, Y = mu[order], Y[:, order]
        Z = V[:, :, None] * Y[:, None, :]
    else:   # no coupling formula: the k lowest block eigenvectors
        order = np.argsort(lam_b[:, 0])[:kb]
        mu = lam_b[order, 0]
        Z = np.zeros((m, d1, kb))
        Z[order, :, np.arange(kb)] = V[order]
    X0 = _from_particles(Z, m, d)
    t_coarse = time.perf_counter() - t0
    say(f"  coarse space: {m} columns, Rayleigh–Ritz start {mu[0]:.6e} .. {mu[k - 1]:.6e}, "
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
        out = np.matmul(T, Zx)          # batched (m, d+1, d+1) @ (m, d+1, p)
        if C is not None:
            c = np.einsum("ja,jap->jp", V, Zx)
            out += V[:, :, None] * sla.cho_solve(chol, c, check_finite=False)[:, None, :]
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

    t0 = time.perf_counter()
    lob = block_lobpcg(apply, precondition, X0, k, rtol * scale, maxiter, log=say)
    t_lob = time.perf_counter() - t0
    ev, residuals = lob["values"], lob["residuals"]
    say(f"  LOBPCG: block {kb} ({kb - k} guard vectors), {lob['iterations']} iterations, "
        f"{S.n_products - n0} products, largest residual {residuals.max():.2e} ({t_lob:.1f} s)")
    lam_hist = [h[0] for h in lob["history"]]
    res_hist = [h[1] for h in lob["history"]]
    return {"smallest": ev, "residuals": residuals, "coarse": mu[:k],
            "n_products": S.n_products - n0, "iterations": lob["iterations"], "block": kb,
            "converged": bool(residuals.max() <= rtol * scale), "scale": scale,
            "seconds": time.perf_counter() - t_start, "seconds_store": t_store,
            "seconds_coarse": t_coarse, "seconds_lobpcg": t_lob, "seconds_blocks": t_blocks,
            "seconds_coarse_matrix": t_cmat, "seconds_cholesky": t_chol, "n_cholesky": n_chol,
            "lambda_history": lam_hist, "residual_history": res_hist, "stored": S}
