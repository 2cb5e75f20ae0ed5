"""Differential test harness for Keras recurrent layers.

Layers, each with one job: ``loader`` reads and validates a case file, ``reference``
computes the float64 NumPy answer, ``keras_runner`` runs the real Keras layer,
``compare`` diffs them, ``report`` explains the diff, ``runner`` ties one case together.
"""

__version__ = "0.1.0"
