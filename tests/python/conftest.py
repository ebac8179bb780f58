"""Shared fixtures: the built canopy-edge binary and the repository paths."""

import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def edge():
    """Runs canopy-edge (built by make) with the given arguments."""
    binary = os.environ.get("CANOPY_EDGE", str(REPO / "target" / "release" / "canopy-edge"))
    if not os.path.exists(binary):
        pytest.fail(f"{binary} is missing: run the tests through `make test`")

    def run(*args, stdin=None):
        return subprocess.run([binary, *map(str, args)], input=stdin, capture_output=True, text=True, check=True)

    return run


@pytest.fixture(scope="session")
def dbc():
    return REPO / "dbc" / "ev_powertrain.dbc"
