"""Checks of the seed papers' theory against the dynamics: conservation laws and their
monitor (:mod:`.conservation`), symmetries, orbits and defects (:mod:`.symmetry`).
"""
