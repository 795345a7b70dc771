"""`pip install ./clients/python` works offline, into a fresh virtual environment."""

from __future__ import annotations

import subprocess
import sys

from conftest import PKG


def test_pip_install_offline(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    py = venv / "bin" / "python"
    # The outer interpreter's pip installs into the venv; --no-index: nothing may come from a package index.
    out = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-index", "--quiet",
                          "--disable-pip-version-check", str(PKG)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    probe = ("import brokerkit, pathlib; from brokerkit import SubprocessIBKRClient, Client, connect_ibkr_robust; "
             "import brokerkit.runner; "
             "assert pathlib.Path(brokerkit.__file__).with_name('py.typed').exists(); print(brokerkit.__file__)")
    got = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert str(venv) in got.stdout, f"imported {got.stdout!r}, not the installed copy"
