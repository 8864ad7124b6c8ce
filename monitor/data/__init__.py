"""Files that ship inside the package, so an installed monitor needs no checkout."""

from __future__ import annotations

from importlib.resources import files


def demo_config_path() -> str:
    """The config `demo` runs with when given none (an installed package is unpacked on
    disk, so the resource is a file of its own)."""
    return str(files(__name__).joinpath("demo.yaml"))
