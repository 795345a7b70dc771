"""A minimal in-tree PEP 517 build backend, standard library only.

pip builds a package in an isolated environment and downloads the build backend named in pyproject.toml into
it; offline, that fails for setuptools or hatchling. This backend needs nothing: it zips the ``brokerkit``
package into a wheel (and an sdist) with the metadata of pyproject.toml's [project] table.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import pathlib
import re
import tarfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "brokerkit"


def _project() -> dict:
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib  # Python 3.11+
        return tomllib.loads(text)["project"]
    except ImportError:  # Python < 3.11: the few plain "key = value" lines this backend needs
        section = text.split("[project]", 1)[1].split("\n[", 1)[0]
        return {m.group(1): m.group(2) for m in re.finditer(r'^(\w[\w-]*)\s*=\s*"([^"]*)"', section, re.M)}


def _metadata() -> str:
    p = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}",
             f"Summary: {p.get('description', '')}"]
    if "requires-python" in p:
        lines.append(f"Requires-Python: {p['requires-python']}")
    readme = ROOT / "README.md"
    if readme.exists():
        lines += ["Description-Content-Type: text/markdown", "", readme.read_text()]
    return "\n".join(lines) + "\n"


def _dist_info() -> str:
    p = _project()
    return f"{p['name']}-{p['version']}.dist-info"


def _files():
    for path in sorted((ROOT / PACKAGE).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path.relative_to(ROOT).as_posix(), path.read_bytes()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel_name() -> str:
    p = _project()
    return f"{p['name']}-{p['version']}-py3-none-any.whl"


def _write_wheel(wheel_directory: str, extra: list) -> str:
    name = _wheel_name()
    di = _dist_info()
    entries = list(extra) + [(f"{di}/METADATA", _metadata().encode()),
                             (f"{di}/WHEEL", b"Wheel-Version: 1.0\nGenerator: brokerkit_build\nRoot-Is-Purelib: true\n"
                                             b"Tag: py3-none-any\n")]
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in entries) + f"{di}/RECORD,,\n"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in entries:
            zf.writestr(zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0)), data)
        zf.writestr(f"{di}/RECORD", record)
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, list(_files()))


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """An editable install: a .pth file that puts this directory on sys.path."""
    return _write_wheel(wheel_directory, [(f"__editable__.{PACKAGE}.pth", (str(ROOT) + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    p = _project()
    base = f"{p['name']}-{p['version']}"
    name = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as tf:
        members = [("pyproject.toml", (ROOT / "pyproject.toml").read_bytes()),
                   ("README.md", (ROOT / "README.md").read_bytes()),
                   ("_build/brokerkit_build.py", pathlib.Path(__file__).read_bytes()),
                   ("PKG-INFO", _metadata().encode())] + list(_files())
        for path, data in members:
            info = tarfile.TarInfo(f"{base}/{path}")
            info.size = len(data)
            info.mtime = 1767225600
            tf.addfile(info, io.BytesIO(data))
    return name
