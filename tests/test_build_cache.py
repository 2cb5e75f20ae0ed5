"""The build cache (harness/targets/build_cache.py): cases of one structure share a layer and its traces, and
that sharing never changes a value, never survives a change of the code under test, and stays bounded."""

from dataclasses import replace

import numpy as np
import pytest

from harness import targets
from harness.errors import SystemFailure
from harness.faults import by_name
from harness.loader import load_case
from harness.modes import MODES
from harness.runner import run_case
from harness.targets import build_cache

from conftest import REPO
from test_modes import REUSE_CASES

GRADIENT_CASES = ["gradients/lstm-stateful-two-calls.yaml", "gradients/lstm-initial-state-return-state.yaml",
                  "gradients/bidirectional-gru-sum-masked.yaml"]


@pytest.fixture(autouse=True)
def fresh_cache():
    build_cache.clear()
    yield
    build_cache.clear()


def _other_values(case, seed: int = 1):
    """The same structure, every value redrawn: what a second case of the structure looks like."""
    rng = np.random.default_rng(seed)

    def redraw(a):
        return a if a.dtype == bool else rng.normal(0.0, 0.5, a.shape)

    calls = [replace(call, input=redraw(call.input), expected={},
                     initial_state=None if call.initial_state is None else
                     {k: redraw(v) for k, v in call.initial_state.items()}) for call in case.calls]
    return replace(case, weights={k: redraw(v) for k, v in case.weights.items()}, calls=calls)


def _bytes(run) -> list:
    return [{name: values.tobytes() for name, values in call.items()} for call in run.outputs]


@pytest.mark.parametrize("name", REUSE_CASES)
def test_a_kept_layer_gives_a_fresh_layers_outputs_bit_for_bit(name):
    """Another case of the structure ran first (its weights, states and traces are in the kept layer): every
    mode's outputs are still those of a fresh layer and fresh traces, bit for bit."""
    case = load_case(REPO / "cases" / name)
    system = targets.get()
    targets.run_modes(system, _other_values(case), MODES)
    kept = targets.run_modes(system, case, MODES)
    assert build_cache._stats["hits"] == 1
    with build_cache.disabled():
        fresh = targets.run_modes(system, case, MODES)
    for mode in MODES:
        assert _bytes(kept[mode]) == _bytes(fresh[mode]), mode


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_kept_gradient_traces_give_fresh_gradients_bit_for_bit(name):
    case = load_case(REPO / "cases" / name)
    system = targets.get()
    for mode in MODES:
        system.gradients(_other_values(case), mode)
        kept = system.gradients(case, mode)
        with build_cache.disabled():
            fresh = system.gradients(case, mode)
        assert [{k: v.tobytes() for k, v in c.items()} for c in kept] == \
            [{k: v.tobytes() for k, v in c.items()} for c in fresh], mode


def test_cases_of_one_structure_share_the_layer_and_others_do_not():
    case = load_case(REPO / "cases" / REUSE_CASES[0])
    system = targets.get()
    first = system.prepare(case)
    assert system.prepare(_other_values(case)).layer is first.layer
    other_dtype = system.prepare(replace(case, dtype="float64"))
    assert other_dtype.layer is not first.layer
    longer = replace(case, calls=[replace(c, input=np.concatenate([c.input, c.input], axis=1), mask=None)
                                  for c in case.calls])
    assert system.prepare(longer).layer is not first.layer


def test_structure_key_names_what_fixes_a_trace():
    case = load_case(REPO / "cases" / "masking" / "mask-middle-gap-seq-backwards.yaml")
    key = build_cache.structure_key(case)
    assert build_cache.structure_key(_other_values(case)) == key
    assert build_cache.structure_key(replace(case, calls=[replace(case.calls[0], mask=None)])) != key
    assert build_cache.structure_key(replace(case, config={**case.config, "unroll": True})) != key
    assert build_cache.structure_key(replace(case, dtype="float16")) != key
    assert build_cache.structure_key(case, "tf-keras") != key


def test_a_patched_keras_is_never_run_on_a_stale_trace():
    """A selftest fault patched in after the structure was cached: the entry is rebuilt and the fault is
    seen in graph mode (it would not be on the kept trace, which the second half shows)."""
    case = load_case(REPO / "cases" / "seed" / "seed-linear-gates.yaml")
    system = targets.get()
    clean = targets.run_modes(system, case, ("graph",))["graph"]
    with by_name("output-gate-dropped").install():
        faulty = targets.run_modes(system, case, ("graph",))["graph"]
    assert build_cache._stats["stale"] == 1
    assert _bytes(faulty) != _bytes(clean)
    after = targets.run_modes(system, case, ("graph",))["graph"]  # the fault uninstalled: rebuilt again
    assert _bytes(after) == _bytes(clean) and build_cache._stats["stale"] == 2


def test_without_the_code_check_a_patch_would_be_missed(monkeypatch):
    """Why the code check exists: with it removed, the kept trace runs and the fault goes unseen."""
    monkeypatch.setattr(build_cache, "_code_of", lambda layer, keras: ())
    case = load_case(REPO / "cases" / "seed" / "seed-linear-gates.yaml")
    system = targets.get()
    clean = targets.run_modes(system, case, ("graph",))["graph"]
    with by_name("output-gate-dropped").install():
        stale = targets.run_modes(system, case, ("graph",))["graph"]
    assert _bytes(stale) == _bytes(clean)


def test_a_layer_that_raised_is_dropped():
    case = load_case(REPO / "cases" / REUSE_CASES[0])
    system = targets.get()
    prepared = system.prepare(case)

    def broken(x, kwargs):
        raise RuntimeError("boom")

    prepared.entry.runners["eager"] = broken
    with pytest.raises(SystemFailure, match="boom"):
        system.run(prepared, "eager")
    assert system.prepare(case).layer is not prepared.layer


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(build_cache, "MAX_ENTRIES", 2)
    case = load_case(REPO / "cases" / "seed" / "seed-linear-gates.yaml")
    for units in (1, 2, 3):
        config = {**case.config, "units": units}
        weights = {k: np.resize(v, v.shape[:-1] + (v.shape[-1] // case.config["units"] * units,)) if k != "recurrent_kernel"
                   else np.resize(v, (units, 4 * units)) for k, v in case.weights.items()}
        assert run_case(replace(case, config=config, weights=weights, calls=[replace(c, expected={}) for c in case.calls]),
                        modes=("eager",)).outcome == "passed"
    assert len(build_cache._entries) == 2 and build_cache._stats["dropped"] == 1
    assert "2 structures kept (at most 2)" in build_cache.describe()


@pytest.mark.parametrize("target", ["tensorflow", "jax", "torch", "tf-keras"])
@pytest.mark.parametrize("name", ["stateful/stateful-masked-calls.yaml", "gradients/lstm-initial-state-return-state.yaml"])
def test_on_every_target_a_kept_layer_repeats_a_fresh_ones_results(target, name):
    """In the target's own process (a worker for jax, torch and tf-keras): a case run first (a fresh layer),
    then another case of its structure, then the first again (the kept layer and its compiled functions):
    the first and third runs agree bit for bit, forward in every mode and gradients in every mode that has them."""
    if target not in targets.installed():
        pytest.skip(f"{target} is not installed")
    system = targets.get(target)
    case = load_case(REPO / "cases" / name)
    modes = system.default_modes if target != "torch" else system.modes

    def everything(c):
        runs = targets.run_modes(system, c, modes)
        found = [_bytes(runs[mode]) for mode in modes]
        if c.gradients is not None:
            for mode in modes:
                if mode not in getattr(system, "no_gradients", {}):
                    found.append([{k: np.asarray(v).tobytes() for k, v in call.items()}
                                  for call in system.gradients(c, mode)])
        return found

    first = everything(case)
    everything(_other_values(case))
    assert everything(case) == first
