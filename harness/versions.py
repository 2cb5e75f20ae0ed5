"""Installed versions of what is under test, and version conditions written in case files
(`requires:` and `known_failure.when:`), read from package metadata without importing TensorFlow."""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from importlib import metadata
from pathlib import Path

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


# Where a Keras package keeps its version, relative to its folder: Keras 3 (installed or a source checkout),
# then Keras 2 and tf_keras.
_VERSION_FILES = ("src/version.py", "__init__.py", "src/__init__.py", "version.py")
_VERSION_LINE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.M)


@lru_cache(maxsize=None)
def module_origin(module: str = "keras") -> dict[str, str | None]:
    """Which `module` an import would give, found as Python finds it (sys.path, PYTHONPATH, an editable
    install) but without importing it (importing Keras imports its backend): {"version", "path"}, and
    "installed", the version of the installed distribution, when that differs (a checkout on PYTHONPATH
    shadows it). The version is read from the package's own source, so a modified Keras says its own."""
    distribution = {"keras": "keras", "tf_keras": "tf-keras"}.get(module, module)
    try:
        installed = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        installed = None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or spec.origin in ("namespace", "built-in"):
        return {"version": None, "path": None, "installed": installed}
    folder = Path(spec.origin).parent
    version = None
    for name in _VERSION_FILES:
        try:
            found = _VERSION_LINE.search((folder / name).read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        if found:
            version = found.group(1)
            break
    version = version or installed
    return {"version": version, "path": str(folder), "installed": installed if installed != version else None}


def describe_origin(module: str = "keras", label: str = "Keras") -> str:
    """"Keras 3.15.1 from /path/to/site-packages/keras", saying when it shadows another installed version."""
    found = module_origin(module)
    if found["path"] is None:
        return f"{label}: not importable" + (f" (the distribution {found['installed']} is installed)" if found["installed"] else "")
    shadow = f" (the installed distribution is {found['installed']})" if found["installed"] else ""
    return f"{label} {found['version'] or 'of unknown version'} from {found['path']}{shadow}"
