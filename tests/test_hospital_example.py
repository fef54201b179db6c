"""``examples/hospital.py`` runs as printed: departments, licence-checked invitations, lapses, suspension."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hospital.py"


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("hospital") / "hospital.sqlite3"
    finished = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLE), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    return finished.stdout


def test_the_licence_check_denies_then_admits(output: str) -> None:
    """The physician licensed in the wrong state is denied by code and requirement, then admitted."""
    assert "denied (acceptance_denied, licence_state)" in output
    assert "lee          MEMBER MD  ['Cardiology']" in output
    assert "nina         MEMBER RN  ['Emergency']" in output


def test_the_lapsed_licence_is_suspended_and_resumed_after_renewal(output: str) -> None:
    """The nurse whose licence lapsed is suspended, refused, and resumed once a renewal is recorded."""
    assert "suspended ['nina']" in output
    assert "nina refused (member_suspended)" in output
    assert "audit member.suspended, member.attributes_recorded, member.resumed" in output
