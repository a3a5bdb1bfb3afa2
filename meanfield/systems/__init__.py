"""The other seed papers' systems: symmetric Boolean functions (:mod:`.boolean`), method of
moments with symmetric inputs (:mod:`.moments`), counts of equivalent minima
(:mod:`.equivalent`).
"""
