"""TensorFlow's log noise is dropped by default and shown with -v; nothing else on stderr is lost."""

import logging
import subprocess
import sys

import pytest

from harness import quiet
from harness.targets import worker

from conftest import REPO, SEED_CASE

NOISE_LINES = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1795997416.229470   12053 port.cc:153] oneDNN custom operations are on. You may see slightly "
    b"different numerical results due to floating-point round-off errors from different computation orders.\n",
    b"E0000 00:00:1795997436.571511   12053 util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512. "
    b"Falling back to the default Eigen-based implementation if present.\n",
    b"E0000 00:00:1796001879.306846   11350 util.cc:131] oneDNN supports DT_HALF only on platforms with AVX-512. "
    b"Falling back to the default Eigen-based implementation if present.\n",
    b"W0512 10:11:12.123456      99 cpu_feature_guard.cc:10] a warning TF_CPP_MIN_LOG_LEVEL=2 would hide\n",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    b"E0000 00:00:1796010002.497087   31737 tfg_optimizer_hook.cc:135] tfg_optimizer{any(tfg-consolidate-attrs)} "
    b"failed: INVALID_ARGUMENT: Node simple_rnn_29_1/while/body/_1/simple_rnn_cell_1/Relu has an empty op name\n",
    b"\twhen importing GraphDef to MLIR module in GrapplerHook\n",
    b"E0000 00:00:1796010002.500563   31737 meta_optimizer.cc:967] remapper failed: NOT_FOUND: Op type not "
    b"registered '' in binary running on vm.\n",
]
KEPT_LINES = [
    b"E0000 00:00:1795997436.571511   12053 util.cc:131] a real C++ error\n",
    b"F0000 00:00:1795997436.571511   12053 check.cc:1] Check failed: a crash message\n",
    b"Traceback (most recent call last):\n",
    b"harness run: --report-json x: not writable\n",
]


def test_the_noise_pattern_drops_only_the_noise():
    assert [bool(quiet.NOISE.match(line)) for line in NOISE_LINES + KEPT_LINES] == [True] * 9 + [False] * 4


def test_the_stderr_filter_passes_everything_else_on_in_order():
    lines = NOISE_LINES[:2] + KEPT_LINES + NOISE_LINES[2:]
    code = ("import os; from harness import quiet; quiet.enable(); "
            f"[os.write(2, line) for line in {lines!r}]; print('stdout untouched')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=REPO, timeout=60)
    assert done.stderr == b"".join(KEPT_LINES) and done.stdout == b"stdout untouched\n"


def test_workers_of_a_quiet_run_are_quiet(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # _start sets it: restored after the test
    monkeypatch.setenv(quiet.ENV, "1")
    loggers = [logging.getLogger(name) for name in ("tensorflow", "tf2onnx")]
    for logger in loggers:
        monkeypatch.setattr(logger, "level", logging.NOTSET)
    worker._start("tensorflow", None)
    assert [logger.level for logger in loggers] == [logging.ERROR] * 2  # retracing warnings are WARNING


@pytest.mark.parametrize("verbose", [False, True])
def test_harness_run_is_quiet_unless_verbose(verbose):
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(SEED_CASE), "--mode", "graph"]
                          + (["-v"] if verbose else []), capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    noise = [line for line in done.stderr.splitlines(keepends=True) if quiet.NOISE.match(line.encode())]
    if verbose:  # what this TensorFlow says at import (oneDNN: TensorFlow 2.20 and later on x86)
        assert noise or "oneDNN" not in done.stderr, done.stderr
    else:
        assert noise == [] and "oneDNN" not in done.stderr and "retracing" not in done.stderr, done.stderr


def test_tf2onnx_root_logger_warnings_are_dropped_and_others_kept():
    import logging

    quiet.python_logging()
    root = logging.getLogger()
    note = logging.LogRecord("root", logging.WARNING, "/x/site-packages/tf2onnx/rewriter/gemm_rewriter.py", 76,
                             "For now, onnxruntime only support float32 type for Gemm rewriter", None, None)
    mine = logging.LogRecord("root", logging.WARNING, "/x/user_code.py", 1, "a warning of the user's", None, None)
    error = logging.LogRecord("root", logging.ERROR, "/x/site-packages/tf2onnx/convert.py", 1, "failed", None, None)
    assert [bool(root.filter(r)) for r in (note, mine, error)] == [False, True, True]


def test_keras_softmax_over_one_unit_note_is_dropped_and_other_warnings_kept():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet.python_logging()
        warnings.warn("You are using a softmax over axis -1 of a tensor of shape (1, 1). This axis has size 1.",
                      UserWarning)
        warnings.warn("a warning of the user's", UserWarning)
    assert [str(w.message) for w in caught] == ["a warning of the user's"]
