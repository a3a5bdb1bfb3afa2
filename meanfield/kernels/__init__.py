"""Private compiled code (Numba): the exact Gaussian-input tiles (:mod:`.gaussian`), the
block-reduced kernel (:mod:`.reduced`), sampled-data kernels (:mod:`.sampled`), Hessian-vector
tiles (:mod:`.hessian`) and the thread pool and compile policy (:mod:`.threads`).

Nothing here is public API: the models call these kernels and own their meaning.
"""
