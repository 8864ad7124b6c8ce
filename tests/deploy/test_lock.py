"""The lock files pin every dependency pyproject.toml declares, exactly, with hashes, and
within the declared ranges; the Makefile installs from them and reinstalls when they change."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import NamedTuple

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.tools import require

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
AWSCLI_LOCK = ROOT / "requirements-awscli.lock"


class Pin(NamedTuple):
    requirement: Requirement
    hashes: list[str]

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def version(self) -> str:
        [spec] = self.requirement.specifier
        return spec.version


def pins(lock: Path) -> list[Pin]:
    found = []
    for entry in re.sub(r"\\\n", " ", lock.read_text()).splitlines():
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        requirement, *hashes = entry.split(" --hash=")
        found.append(Pin(Requirement(requirement), [h.strip() for h in hashes]))
    return found


def declared() -> list[Requirement]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["test"]
    # The project is installed without build isolation, so its build backend is locked too.
    listed += pyproject["build-system"]["requires"]
    return [Requirement(r) for r in listed]


def extra_requirements(requirement: Requirement) -> list[Requirement]:
    """What `name[extra,...]` adds, read from the installed distribution's metadata."""
    added = []
    for line in importlib.metadata.requires(requirement.name) or []:
        dependency = Requirement(line)
        if dependency.marker is None:
            continue
        for extra in requirement.extras:
            if dependency.marker.evaluate({"extra": extra}) and not dependency.marker.evaluate(
                {"extra": ""}
            ):
                added.append(dependency)
    return added


@pytest.mark.parametrize("lock", [LOCK, AWSCLI_LOCK], ids=lambda p: p.name)
def test_every_entry_is_an_exact_pin_with_hashes(lock: Path) -> None:
    entries = pins(lock)
    assert entries
    for pin in entries:
        [spec] = pin.requirement.specifier
        assert spec.operator == "==", pin.requirement
        assert pin.requirement.url is None, pin.requirement
        assert pin.hashes and all(h.startswith("sha256:") for h in pin.hashes), pin.requirement


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    locked: dict[str, list[Pin]] = {}
    for pin in pins(LOCK):
        locked.setdefault(pin.name, []).append(pin)
    wanted = declared()
    wanted += [extra for r in wanted if r.extras for extra in extra_requirements(r)]
    assert any(r.extras for r in wanted)  # psycopg[binary,pool]: extras are followed
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in {LOCK.name}"
        for pin in locked[name]:
            assert requirement.specifier.contains(pin.version, prereleases=True), (
                f"{LOCK.name} pins {pin.name}=={pin.version}, outside {requirement}"
            )


def test_one_version_of_each_package_on_python_3_11_and_3_12() -> None:
    # A universal lock: entries that differ by Python carry markers, and each of these
    # Pythons gets exactly one version of every package.
    for python in ("3.11", "3.12"):
        environment = {"python_version": python, "python_full_version": f"{python}.0"}
        chosen: dict[str, list[str]] = {}
        for pin in pins(LOCK):
            marker = pin.requirement.marker or Marker("python_version >= '3'")
            if marker.evaluate(environment | {"sys_platform": "linux"}):
                chosen.setdefault(pin.name, []).append(pin.version)
        assert all(len(versions) == 1 for versions in chosen.values()), chosen
        assert {"aioboto3", "psycopg", "psycopg-binary"} <= chosen.keys()


def test_the_awscli_lock_pins_the_cli() -> None:
    assert "awscli" in {pin.name for pin in pins(AWSCLI_LOCK)}


@pytest.mark.parametrize(
    ("lock", "target"),
    [(LOCK, "{venv}/bin/.installed"), (AWSCLI_LOCK, "{awscli}/bin/aws")],
    ids=["project", "awscli"],
)
def test_make_installs_from_the_lock_again_when_it_changes(
    tmp_path: Path, lock: Path, target: str
) -> None:
    make = require("make")
    venv, awscli = tmp_path / "venv", tmp_path / "awscli"
    stamp = Path(target.format(venv=venv, awscli=awscli))
    stamp.parent.mkdir(parents=True)
    stamp.touch()
    newer = max(p.stat().st_mtime for p in (lock, ROOT / "pyproject.toml")) + 60
    os.utime(stamp, (newer, newer))

    def dry_run(*flags: str) -> str:
        command = [make, "-n", "-C", str(ROOT), f"VENV={venv}", f"AWSCLI_VENV={awscli}"]
        result = subprocess.run(
            [*command, *flags, str(stamp)], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "pip install" not in dry_run()  # up to date: nothing to do
    commands = dry_run("-W", lock.name)  # the lock changed
    assert f"--require-hashes -r {lock.name}" in commands
    if lock == LOCK:
        assert "--no-deps" in commands and "-e ." in commands
