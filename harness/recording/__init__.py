"""`harness record` and `harness compare`: outputs recorded under one TensorFlow/Keras version, compared
under another. store.py writes and reads recordings, classify.py judges every case against one,
render.py turns a comparison into Markdown."""

from harness.recording.classify import (BEYOND, EDITED, IDENTICAL, KINDS, MISSING, NEW, NOT_COMPARABLE, WITHIN,
                                        CaseChange, Comparison, _cause, compare)
from harness.recording.render import markdown
from harness.recording.store import (FORMAT, FORMAT_VERSION, Recording, RecordingError, _sha256, environment,
                                     open_recording, record, recording_lock)

__all__ = ["BEYOND", "EDITED", "FORMAT", "FORMAT_VERSION", "IDENTICAL", "KINDS", "MISSING", "NEW", "NOT_COMPARABLE",
           "WITHIN", "CaseChange", "Comparison", "Recording", "RecordingError", "_cause", "_sha256", "compare",
           "environment", "markdown", "open_recording", "record", "recording_lock"]
