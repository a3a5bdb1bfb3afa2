"""Every claim of the papers, measured, in one report: ``python -m meanfield.verify``.

* :mod:`~meanfield.verify.claims` — the checks, pure functions of measured data returning a
  structured :class:`~meanfield.verify.claims.Verdict` (id, source, statement, measured,
  expected, criterion, ok, run);
* :mod:`~meanfield.verify.measure` — what produces the measurements (experiment runs through
  the command line's entry point, and small measurement tasks), one run folder each;
* :mod:`~meanfield.verify.families` — which runs each group of claims needs per profile
  (``quick``, ``paper``) and how its claims are read from the run folders;
* :mod:`~meanfield.verify.report` — the table, ``verify.json`` and ``verify.md``.
"""
from .claims import Verdict

__all__ = ["Verdict"]
