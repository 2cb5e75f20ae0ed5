"""TensorFlow's log noise, kept out of the harness's output unless asked for (`-v`).

Three kinds, each silenced where it is made:
- Python logging: tf.function's retracing warnings ("... triggered tf.function retracing ... please define
  your @tf.function outside of the loop") are about the harness's own calls, which build new functions per
  case on purpose (see the README's Speed section); the `tensorflow` logger (and tf2onnx's) is set to ERROR,
  in this process and, through HARNESS_QUIET, in every worker process.
- C++ log lines that TF_CPP_MIN_LOG_LEVEL does not silence in TensorFlow 2.20+: the oneDNN notice
  (port.cc, logged before absl is initialised, hence also absl's "All log messages before
  absl::InitializeLog() ..." line) and the AVX-512 DT_BOOL notice. They are written by C++ straight to
  file descriptor 2, so they can only be dropped there: `filter_stderr` points fd 2 at a pipe read by a small
  filter process that drops those lines and passes every other byte on. A process, not a thread, so that
  what a crashing TensorFlow writes last (a CHECK failure) still gets through.
- Grappler's notes that one of its optimisation passes failed on a graph and was skipped (tfg_optimizer_hook,
  meta_optimizer "remapper failed"; seen with relu in a SimpleRNN's while loop in graph mode): the graph
  then runs unoptimised, and the case's results say whether that matters.
- Keras's UserWarning that a softmax over an axis of size 1 is constant (a units=1 case, once per layer built).
Nothing else on stderr is dropped: errors, tracebacks and every other warning pass unchanged.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import subprocess
import sys
import warnings

ENV = "HARNESS_QUIET"  # "1": quiet; read by worker processes (harness/targets/worker.py)

# A C++ INFO or WARNING line (absl/glog format; before absl is initialised the "time" is 00:00:<epoch>), the
# absl pre-initialisation notice, the DT_BOOL (DT_HALF, ...) notice, LiteRT's notices (the tflite target).
NOISE = re.compile(rb"^(?:[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] .*"
                   rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                   rb"|E\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] oneDNN supports DT_[A-Z0-9]+ only on platforms with AVX-512.*"
                   # Grappler passes that fail on a graph and are skipped (TensorFlow runs the graph unoptimised)
                   rb"|E\d{4} [\d:.]+ +\d+ (?:tfg_optimizer_hook|meta_optimizer)\.cc:\d+\] .*"
                   rb"|\twhen importing GraphDef to MLIR module in GrapplerHook"
                   rb"|INFO: (?:Created TensorFlow Lite [\w ]+ delegate for CPU|Initialized TensorFlow Lite runtime)\."
                   rb")\r?\n?$")

_FILTER = f"""
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the harness's to handle; this passes on its last words
noise = re.compile({NOISE.pattern!r})
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    if not noise.match(line):
        out.write(line)
        out.flush()
"""


# Python loggers whose warnings are about the harness's own use of the library: TensorFlow's (tf.function
# retracing) and tf2onnx's (its notes on the graphs it converts, the onnx target).
LOGGERS = ("tensorflow", "tf2onnx")


def _not_a_library_note(record: logging.LogRecord) -> bool:
    """False for a warning tf2onnx logs through the root logger ("For now, onnxruntime only support float32
    type for Gemm rewriter", logged with logging.warning), which LOGGERS cannot reach."""
    return record.levelno >= logging.ERROR or f"{os.sep}tf2onnx{os.sep}" not in (record.pathname or "")


def python_logging() -> None:
    """Quiet those loggers to errors: call before or after importing the libraries."""
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    # Keras's note that softmax over one unit is constant: true of a case with units=1, said once per layer
    # built (hundreds of times in a fuzz campaign); the case's own outputs already show it.
    warnings.filterwarnings("ignore", message="You are using a softmax over axis", category=UserWarning)
    root = logging.getLogger()
    if _not_a_library_note not in root.filters:
        root.addFilter(_not_a_library_note)


def enable() -> None:
    """Quiet this process and the worker processes it starts."""
    os.environ[ENV] = "1"
    python_logging()
    filter_stderr()


def filter_stderr() -> None:
    """Send fd 2 through the filter process for the rest of this process's life (workers inherit it)."""
    try:
        original = os.dup(2)
        read, write = os.pipe()
        child = subprocess.Popen([sys.executable, "-c", _FILTER], stdin=read, stdout=original, stderr=original,
                                 close_fds=True, start_new_session=True)  # outside the terminal's Ctrl-C
    except OSError:
        return  # no filter: the noise is shown, nothing is lost
    os.close(read)
    sys.stderr.flush()
    os.dup2(write, 2)
    os.close(write)

    def finish() -> None:
        """Hand fd 2 back and let the filter pass on what is left (workers still alive may hold the pipe)."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    atexit.register(finish)
