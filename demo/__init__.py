"""Demo population generator: simulated customers of a Chinese consumer brand.

Writes daily landing files for the 8 demo sources (matching ``schemas/sources``) and a
separate ground truth (people, identifiers, future purchases, bad-row counts).
"""

from demo.generator import GenerationSummary, generate

__all__ = ["GenerationSummary", "generate"]
