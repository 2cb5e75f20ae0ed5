"""The harness's small exception tree. Every user-facing error is one of these, never a bare traceback."""

from __future__ import annotations

from dataclasses import dataclass


class HarnessError(Exception):
    """Base of every error the harness reports to a user."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a case file: where, what was expected, what was found, how to fix it."""

    field: str  # dotted path into the document, e.g. "weights.kernel"; "" for the whole file
    message: str
    expected: str | None = None
    found: str | None = None
    hint: str | None = None
    line: int | None = None  # 1-based line in the file, when known

    def render(self, path: str) -> str:
        where = f"{path}:{self.line}" if self.line else path
        head = f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        lines = [head]
        for label, value in (("expected", self.expected), ("found", self.found), ("hint", self.hint)):
            if value:
                lines.append(f"  {label + ':':<9} {value}")
        return "\n".join(lines)


class InvalidCase(HarnessError):
    """A case file that cannot be run: bad syntax, an unknown field, a wrong shape, ..."""

    def __init__(self, path: str, problems: list[Problem]):
        self.path = path
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        head = f"invalid case file ({count} problem{'s' if count != 1 else ''})"
        return head + "\n" + "\n".join(p.render(self.path) for p in self.problems)


class LoadCrash(InvalidCase):
    """Loading a file raised something the loader does not expect: a harness bug, reported as that file's
    `harness-error` (with the traceback) so that the other files still load and run."""

    def __init__(self, path: str, trace: str):
        self.trace = trace
        last = trace.strip().splitlines()[-1] if trace.strip() else "unknown error"
        super().__init__(path, [Problem("", f"the harness failed while loading this file (a bug in the harness, "
                                            f"please report it): {last}")])

    def render(self) -> str:
        return super().render() + "\n" + self.trace


class Unsupported(HarnessError):
    """The case asks for something the reference does not implement; it is never silently approximated."""


class NotApplicable(HarnessError):
    """The case does not apply to the installed Keras (e.g. an activation it does not have): skipped."""


class SystemFailure(HarnessError):
    """The system under test raised while preparing or running the layer; carries its own message and
    the stage (building, converting, running call 2 in graph mode, ...)."""

    def __init__(self, stage: str, exc: BaseException, system: str = "Keras"):
        self.stage = stage
        self.system = system
        self.exc_type = type(exc).__name__
        self.keras_message = str(exc).strip()
        super().__init__(f"{system} raised {self.exc_type} while {stage}: {self.keras_message}")

    def __reduce__(self):  # crosses process boundaries (a backend runs in a worker process)
        return _restore_failure, (self.stage, self.system, self.exc_type, self.keras_message)


def _restore_failure(stage: str, system: str, exc_type: str, message: str) -> "SystemFailure":
    failure = SystemFailure.__new__(SystemFailure)
    failure.stage, failure.system, failure.exc_type, failure.keras_message = stage, system, exc_type, message
    Exception.__init__(failure, f"{system} raised {exc_type} while {stage}: {message}")
    return failure


KerasFailure = SystemFailure  # the name it had while Keras on TensorFlow was the only system under test
