"""Differential test harness for Keras recurrent layers.

Layer specs (``harness.layers``: one file per layer) say what a layer is and compute its float64
reference; systems under test (``harness.targets``) run the real Keras layer; ``loader`` reads and
validates a case file, ``compare`` diffs the sources, ``report`` explains the diff, ``runner`` ties
one case together. See the README's Architecture section.

``from harness import check_layer`` (harness/checking.py) checks a Keras layer object from Python; it is
imported on first use, so ``import harness`` stays cheap (no NumPy, no Keras, no TensorFlow).
"""

__version__ = "0.2.0"
__all__ = ["check_layer", "CheckResult"]


def __getattr__(name: str):
    if name in ("check_layer", "CheckResult"):
        from harness import checking  # noqa: PLC0415 - lazily: it imports NumPy and the loader

        return getattr(checking, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
