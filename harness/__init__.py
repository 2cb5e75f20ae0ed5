"""Differential test harness for Keras recurrent layers.

Layer specs (``harness.layers``: one file per layer) say what a layer is and compute its float64
reference; systems under test (``harness.targets``) run the real Keras layer; ``loader`` reads and
validates a case file, ``compare`` diffs the sources, ``report`` explains the diff, ``runner`` ties
one case together. See the README's Architecture section.
"""

__version__ = "0.2.0"
