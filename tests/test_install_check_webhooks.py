"""The ``webhooks`` extra as ``.ci/wheels`` checks it, run here on the development install.

``tests/install_check.py --extras webhooks`` registers an endpoint on a standard-library receiver on
127.0.0.1 and lets ``tenantkit webhooks work --once`` deliver one signed message; with ``cryptography``
refused, a kit with webhook settings must be refused naming the extra. (The dev extra installs everything,
so only ``.ci/wheels`` proves the extra alone is enough; these tests keep the checker itself honest.)
"""

import subprocess
import sys
from pathlib import Path

INSTALL_CHECK = Path(__file__).with_name("install_check.py")


def install_check(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(INSTALL_CHECK),
            "--database",
            str(tmp_path / "hooks.sqlite3"),
            "--migrate",
            *arguments,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_worker_delivers_a_signed_message_with_the_extra(tmp_path: Path) -> None:
    """With ``--extras webhooks`` the extra's modules import and the CLI worker delivers, signed."""
    completed = install_check(tmp_path, "--extras", "webhooks")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ok: import httpx" in completed.stdout
    assert "ok: import cryptography.fernet" in completed.stdout
    assert "delivers it, signed" in completed.stdout
    assert "install check passed [webhooks]" in completed.stdout


def test_without_cryptography_webhook_settings_name_the_extra(tmp_path: Path) -> None:
    """Without the extra's ``cryptography`` tenantkit still imports, and refuses webhooks naming the extra."""
    completed = install_check(tmp_path, "--refuse", "cryptography")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ok: import tenantkit.webhooks" in completed.stdout
    assert "ok: webhooks without the extra are refused, naming tenantkit[webhooks]" in completed.stdout


def test_a_missing_extra_module_fails_the_check(tmp_path: Path) -> None:
    """Claiming the extra while ``httpx`` is missing fails the check, naming the import."""
    completed = install_check(tmp_path, "--extras", "webhooks", "--refuse", "httpx")
    assert completed.returncode == 1
    assert "install check FAILED [webhooks]: import httpx" in completed.stderr
