"""
The tested versions: ``constraints/pyX.Y.txt`` (``make upgrade-deps``) pin what ``make venv`` installs.

Each file must pin every dependency and extra of ``pyproject.toml`` at a version it allows, there
must be one per supported Python, and the virtualenv ``make test`` runs in must hold those versions.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CLASSIFIED = sorted(
    classifier.rsplit(" :: ", 1)[1]
    for classifier in PYPROJECT["project"]["classifiers"]
    if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", classifier)
)


def pins(path: Path) -> dict[str, str]:
    result = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            result[canonicalize_name(name.split("[")[0])] = version.split(";")[0].strip()
    return result


def requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    listed = project["dependencies"] + [req for extra in project["optional-dependencies"].values() for req in extra]
    return [Requirement(text) for text in listed]


def test_one_file_per_supported_python_and_the_makefile_knows_them() -> None:
    files = sorted(path.name for path in (ROOT / "constraints").glob("py*.txt"))
    assert files == [f"py{version}.txt" for version in CLASSIFIED]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^LOCK_PYTHONS := (.*)$", makefile, re.M).group(1).split() == CLASSIFIED  # type: ignore[union-attr]


@pytest.mark.parametrize("version", CLASSIFIED)
def test_every_requirement_is_pinned_at_an_allowed_version(version: str) -> None:
    pinned = pins(ROOT / "constraints" / f"py{version}.txt")
    environment = {**default_environment(), "python_version": version, "python_full_version": f"{version}.0"}
    wrong = []
    for req in requirements():
        if req.marker is not None and not req.marker.evaluate(environment):
            continue
        name = canonicalize_name(req.name)
        if name not in pinned:
            wrong.append(f"{req}: not pinned")
        elif not req.specifier.contains(pinned[name], prereleases=True):
            wrong.append(f"{req}: pinned at {pinned[name]}")
    assert not wrong, f"constraints/py{version}.txt (run make upgrade-deps): {wrong}"
    assert canonicalize_name(PYPROJECT["project"]["name"]) not in pinned, "the package itself is not pinned"


@pytest.mark.skipif(
    Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(), reason="checks the .venv that make venv builds"
)
def test_the_venv_holds_the_locked_versions() -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    pinned = pins(ROOT / "constraints" / f"py{version}.txt")
    installed = {canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}
    differ = {
        name: (installed[name], pin) for name, pin in pinned.items() if name in installed and installed[name] != pin
    }
    assert not differ, f"installed vs constraints/py{version}.txt (run make clean venv): {differ}"
    for name in ("apache-airflow", "ruff", "mypy", "pytest"):
        assert installed[name] == pinned[name]
