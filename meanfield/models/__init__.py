"""The mathematical objects: the problem (:mod:`.problem`: input laws, targets, teacher),
the particle measure (:mod:`.particles`), the population-risk backends (:mod:`.backends`), and
the reduced models of the theory: the block-reduced flow (:mod:`.reduced`), the 1-D radial
model (:mod:`.radial1d`), the odd-target moment ODE (:mod:`.odd`) and the maps between the
full and reduced descriptions (:mod:`.lowdim`).
"""
