"""Installed versions of what is under test, and version conditions written in case files
(`requires:` and `known_failure.when:`), read from package metadata without importing TensorFlow."""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

# condition key -> distributions that provide it, first found wins. "keras" is the `keras` package only:
# the Keras that `import keras` gives (tf_keras, legacy Keras 2 beside it, is its own key).
_DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos"), "keras": ("keras",),
                  "tf_keras": ("tf-keras",), "numpy": ("numpy",)}


@lru_cache(maxsize=1)
def installed_versions() -> dict[str, str]:
    found = {}
    for key, dists in _DISTRIBUTIONS.items():
        for dist in dists:
            try:
                found[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def keras_flavor() -> str:
    """"keras3" or "keras2": the semantics of the installed `keras` package, read without importing it
    (TensorFlow <= 2.15 ships Keras 2 as `keras`; without the package only tf.keras, Keras 2, exists)."""
    version = installed_versions().get("keras")
    return "keras3" if version and int(version.split(".")[0]) >= 3 else "keras2"


def check_specifier(text: str) -> str | None:
    """None if `text` is a valid version specifier such as ">=3" or "<2.16,>=2.12", else why not."""
    try:
        SpecifierSet(text)
    except InvalidSpecifier as exc:
        return str(exc)
    return None


def unmet(conditions: dict[str, str], versions: dict[str, str] | None = None) -> list[str]:
    """The conditions the installed versions do not meet, as readable text; [] when all are met."""
    versions = installed_versions() if versions is None else versions
    missing = []
    for key, spec in conditions.items():
        have = versions.get(key)
        if have is None or Version(have) not in SpecifierSet(spec):
            missing.append(f"{key}{spec} (installed: {have or 'none'})")
    return missing
