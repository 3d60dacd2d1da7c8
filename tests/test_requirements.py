"""The pinned requirements agree with each other and with the installed packages."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENT_FILES = ("requirements.txt", "requirements-dev.txt")


def pinned_requirements() -> list[Requirement]:
    pins = []
    for name in REQUIREMENT_FILES:
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                pins.append(Requirement(line))
    return pins


@pytest.mark.parametrize("requirement", pinned_requirements(), ids=str)
def test_pin_matches_installed_version(requirement):
    # When a pin conflicts with another package's dependencies, pip fails and
    # a fresh `make demo` stops at the install step.
    installed = metadata.version(requirement.name)
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{requirement} is pinned but {installed} is installed; pin the version"
        " that pip resolves with every other requirement"
    )


@pytest.mark.parametrize("requirement", pinned_requirements(), ids=str)
def test_pin_is_exact(requirement):
    assert re.fullmatch(r"==[^,]+", str(requirement.specifier)), (
        f"{requirement} is not pinned to one version; use NAME==VERSION"
    )
