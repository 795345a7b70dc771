"""The README's first example runs as written, against a fake gateway on the port it names."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import PKG


def test_readme_plan_example(brokerkit_bin, gateway):
    text = (PKG / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert '"127.0.0.1", 4002' in code
    code = code.replace('"127.0.0.1", 4002', f'"{gateway.host}", {gateway.port}')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, BROKERKIT=brokerkit_bin, PYTHONPATH=str(PKG)))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "['DU1234567', 'DU7654321']"
    assert "AAPL 100" in lines
    assert "{'value': Decimal('100523.45'), 'currency': 'USD'}" in lines
    assert lines[-1] == "True"
