"""
Release hygiene: ``python -m build`` makes a wheel and an sdist that are complete, clean and
installable, and Airflow finds the provider in a fresh environment built from the wheel alone.

The build is the one ``make dist`` runs (sdist first, the wheel built from the unpacked sdist, so
a file missing from the sdist breaks the wheel). The install goes into a new virtualenv with uv:
the wheel and its declared dependencies, nothing from this checkout.
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gradient import __version__

pytestmark = [pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "airflow_provider_gradient"
#: Never shipped: caches, virtualenvs, run logs, local databases, build output.
JUNK = re.compile(
    r"(^|/)(__pycache__|\.venv[^/]*|\.pytest_cache|\.mypy_cache|\.ruff_cache|\.logs|\.airflow-home|site|dist|build)(/|$)"
    r"|\.pyc$|\.log$|\.db$|\.sqlite$"
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the sdist and the wheel (as ``make dist`` does) into a temporary directory."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--installer", "uv", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1, wheels
    assert len(sdists) == 1, sdists
    return {"wheel": wheels[0], "sdist": sdists[0]}


@pytest.fixture(scope="module")
def wheel_names(dist: dict[str, Path]) -> list[str]:
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        return wheel.namelist()


@pytest.fixture(scope="module")
def sdist_names(dist: dict[str, Path]) -> list[str]:
    with tarfile.open(dist["sdist"]) as sdist:
        names = [member.name for member in sdist.getmembers() if member.isfile()]
    root = f"{PACKAGE}-{__version__}/"
    assert all(name.startswith(root) for name in names)
    return [name[len(root) :] for name in names]


def _dist_info_file(dist: dict[str, Path], name: str) -> str:
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        return wheel.read(f"{PACKAGE}-{__version__}.dist-info/{name}").decode()


@pytest.fixture(scope="module")
def metadata(dist: dict[str, Path]) -> Message:
    return email.parser.Parser().parsestr(_dist_info_file(dist, "METADATA"))


# -- version -----------------------------------------------------------------------------------


def test_version_lives_in_one_place() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == f"{PACKAGE}/__init__.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", __version__)


def test_artifacts_carry_the_version(dist: dict[str, Path], metadata: Message) -> None:
    assert dist["wheel"].name == f"{PACKAGE}-{__version__}-py3-none-any.whl"
    assert dist["sdist"].name == f"{PACKAGE}-{__version__}.tar.gz"
    assert metadata["Name"] == "airflow-provider-gradient"
    assert metadata["Version"] == __version__


def test_changelog_is_shipped_and_its_top_entry_is_this_version(sdist_names: list[str]) -> None:
    changelog = REPO / "CHANGELOG.md"
    if not changelog.exists():
        pytest.skip("CHANGELOG.md is not written yet")
    entries = re.findall(r"^## \[([^\]]+)\]", changelog.read_text(), flags=re.MULTILINE)
    assert entries, "CHANGELOG.md has no '## [version]' entry"
    # Keep a Changelog: work in progress sits under [Unreleased] until the release renames it.
    assert entries[0] in ("Unreleased", __version__), entries[0]
    assert "CHANGELOG.md" in sdist_names


# -- wheel -------------------------------------------------------------------------------------


def test_wheel_ships_every_module_and_the_type_marker(wheel_names: list[str]) -> None:
    assert f"{PACKAGE}/py.typed" in wheel_names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel_names), "the wheel carries LICENSE"
    sources = {
        path.relative_to(REPO).as_posix() for path in (REPO / PACKAGE).rglob("*.py") if "__pycache__" not in path.parts
    }
    missing = sources - set(wheel_names)
    assert not missing, f"modules not in the wheel: {sorted(missing)}"
    # The emulator and its pytest plugin are part of the package on purpose (users test their DAGs with them).
    assert f"{PACKAGE}/testing/emulator/gradient_emulator.py" in wheel_names
    assert f"{PACKAGE}/testing/pytest_plugin.py" in wheel_names


def test_wheel_ships_nothing_else(wheel_names: list[str]) -> None:
    top_level = {name.split("/", 1)[0] for name in wheel_names}
    assert top_level == {PACKAGE, f"{PACKAGE}-{__version__}.dist-info"}
    assert [name for name in wheel_names if JUNK.search(name)] == []


def test_wheel_entry_points(dist: dict[str, Path]) -> None:
    text = _dist_info_file(dist, "entry_points.txt")
    groups: dict[str, dict[str, str]] = {}
    group = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            group = line.strip("[]")
            groups[group] = {}
        elif "=" in line:
            name, value = (part.strip() for part in line.split("=", 1))
            groups[group][name] = value
    assert groups["apache_airflow_provider"] == {"provider_info": f"{PACKAGE}.get_provider_info:get_provider_info"}
    assert groups["pytest11"] == {"gradient_emulator": f"{PACKAGE}.testing.pytest_plugin"}


def test_wheel_metadata_declares_the_supported_range(metadata: Message) -> None:
    assert metadata["Requires-Python"] is not None
    assert ">=3.10" in metadata["Requires-Python"]
    requires = metadata.get_all("Requires-Dist") or []
    assert any(re.match(r"apache-airflow>=3\.0\.0(,|$)", req.replace(" ", "")) for req in requires), requires
    assert any(req.startswith("apache-airflow-providers-common-compat") for req in requires), requires
    assert metadata["License-Expression"] == "Apache-2.0"
    classifiers = metadata.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.10" in classifiers
    assert "Framework :: Apache Airflow :: Provider" in classifiers


# -- sdist -------------------------------------------------------------------------------------


def test_sdist_has_what_a_rebuild_and_the_tests_need(sdist_names: list[str]) -> None:
    for needed in (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        f"{PACKAGE}/__init__.py",
        f"{PACKAGE}/py.typed",
        "tests/conftest.py",
    ):
        assert needed in sdist_names, needed


def test_sdist_ships_no_junk(sdist_names: list[str]) -> None:
    assert [name for name in sdist_names if JUNK.search(name)] == []


# -- a fresh install ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_env(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A new virtualenv with the wheel and its dependencies installed by uv, and a clean Airflow home."""
    root = tmp_path_factory.mktemp("fresh-install")
    venv = root / "venv"
    uv = [sys.executable, "-m", "uv"]
    for command in (
        [*uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        [*uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(dist["wheel"])],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    env.update({"AIRFLOW_HOME": str(root / "airflow-home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    return {"venv": venv, "env": env, "cwd": root}


def _run(fresh_env: dict[str, Any], *command: str) -> str:
    done = subprocess.run(
        command, cwd=fresh_env["cwd"], env=fresh_env["env"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def _json_tail(output: str) -> Any:
    """The JSON document an ``airflow ... -o json`` command printed (after any log lines)."""
    return json.loads(output[output.index("[") :])


def test_fresh_install_imports_the_wheel_not_the_checkout(fresh_env: dict[str, Any]) -> None:
    python = str(fresh_env["venv"] / "bin" / "python")
    out = _run(fresh_env, python, "-c", f"import {PACKAGE} as p; print(p.__file__); print(p.__version__)")
    location, version = out.split()[-2:]
    assert Path(location).is_relative_to(fresh_env["venv"]), location
    assert version == __version__


def test_airflow_lists_the_provider_from_the_wheel(fresh_env: dict[str, Any]) -> None:
    airflow = str(fresh_env["venv"] / "bin" / "airflow")
    providers = _json_tail(_run(fresh_env, airflow, "providers", "list", "-o", "json"))
    ours = [p for p in providers if p["package_name"] == "airflow-provider-gradient"]
    assert [p["version"] for p in ours] == [__version__]
    assert "Gradient" in ours[0]["description"]


def test_airflow_knows_the_gradient_connection_type_from_the_wheel(fresh_env: dict[str, Any]) -> None:
    airflow = str(fresh_env["venv"] / "bin" / "airflow")
    hooks = _json_tail(_run(fresh_env, airflow, "providers", "hooks", "-o", "json"))
    gradient = [hook for hook in hooks if hook["connection_type"] == "gradient"]
    assert gradient == [
        {
            "connection_type": "gradient",
            "class": f"{PACKAGE}.hooks.gradient.GradientHook",
            "conn_id_attribute_name": "gradient_conn_id",
            "package_name": "airflow-provider-gradient",
            "hook_name": "DigitalOcean Gradient",
        }
    ]
