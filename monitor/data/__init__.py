"""Files that ship inside the package, so an installed monitor needs no checkout."""

from __future__ import annotations

from importlib.resources import as_file, files

from monitor.config import Config, load_config

DEMO_CONFIG = "demo.yaml"


def demo_config() -> Config:
    """The config `demo` runs with when given none, read through the same checks as a file."""
    with as_file(files(__name__).joinpath(DEMO_CONFIG)) as path:
        return load_config(path)
