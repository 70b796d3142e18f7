#!/usr/bin/env python3
"""Build the krew archive of `kubectl livestrat` (dist/kubectl-livestrat.tar.gz), byte for byte reproducible.

The archive holds plugins/krew/kubectl-livestrat, the shim that runs the installed livestrat package;
plugins/krew/livestrat.yaml names its sha256, which tests/desk/test_krew_manifest.py checks against a fresh
build. Install it without any index:

    python3 scripts/krew-archive.py
    kubectl krew install --manifest=plugins/krew/livestrat.yaml --archive=dist/kubectl-livestrat.tar.gz
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("plugins/krew/kubectl-livestrat",)


def archive_bytes() -> bytes:
    """The .tar.gz: fixed order, owners, modes and times, and no time in the gzip header."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative in FILES:
            data = (ROOT / relative).read_bytes()
            info = tarfile.TarInfo(Path(relative).name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def sha256() -> str:
    return hashlib.sha256(archive_bytes()).hexdigest()


def main() -> int:
    target = ROOT / "dist" / "kubectl-livestrat.tar.gz"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(archive_bytes())
    print(f"{target} sha256 {sha256()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
