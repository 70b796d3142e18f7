"""A configMap volume written as the kubelet writes it, for the stand-in kubelet (livestrat/kube_emulator/kubelet.py).

What the kubelet does (``pkg/volume/configmap``'s ``MakePayload`` and ``pkg/volume/util/atomic_writer.go``), and
this module with it:

- **the payload**: without ``items``, every key of ``data`` and ``binaryData`` is a file of that name; with
  ``items``, only the listed keys, each at its ``path`` (which may hold directories), "unlisted keys will not be
  present". A listed key the ConfigMap lacks is an error unless the volume is ``optional``; a missing ConfigMap
  is an error unless ``optional`` (then the volume is empty). Each file gets the item's ``mode``, else the
  volume's ``defaultMode``, else 0644.
- **the paths**: relative, no ``..`` element, not starting with ``..``, at most 4096 bytes and 255 per element
  (``validatePath``).
- **the layout**: the files live in a timestamped directory ``..2006_01_02_15_04_05.NNNN``; ``..data`` is a
  symbolic link to it, and each top-level name of the payload is a link ``NAME -> ..data/NAME``. An update writes
  a new timestamped directory, swaps ``..data`` to it in one rename (``..data_tmp`` first) and removes the old
  directory and the links of names that are gone, so a reader sees the old files or the new, never a mix.

The messages are the kubelet's: ``configmap "NAME" not found`` (from the API server's NotFound) and ``configmap
references non-existent config key: KEY``, which the kubelet puts in a ``FailedMount`` event (``MountVolume.SetUp
failed for volume "VOLUME" : ...``) while the pod stays in ContainerCreating.

Where this differs: the volume is a directory on this machine, not a read-only tmpfs mount: read-only only by
the files' modes, which bind nobody running as root (as these tests may): a process could write beside the files
(Python's ``__pycache__``, which a real read-only mount silently refuses), and an update leaves what it wrote. The kubelet re-reads a mounted ConfigMap on its periodic sync (about a minute, plus its cache's
TTL); the stand-in's loop does so on its next turn, sooner, which is the harder case for a reader.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DATA_DIR = "..data"
NEW_DATA_DIR = "..data_tmp"
DEFAULT_MODE = 0o644
MAX_PATH = 4096
MAX_PATH_ELEMENT = 255


class MountFailed(Exception):
    """The volume cannot be set up; the message is the kubelet's (after ``MountVolume.SetUp failed for volume``)."""


def _path_problem(path: str) -> str | None:
    """``validatePath`` of atomic_writer.go, its messages: None when ``path`` may be written."""
    if not path:
        return f"invalid path: must not be empty: {path!r}"
    if path.startswith("/"):
        return f"invalid path: must be relative path: {path}"
    if len(path) > MAX_PATH:
        return f"invalid path: must be less than or equal to {MAX_PATH} characters"
    parts = path.split("/")
    for part in parts:
        if part == "..":
            return f"invalid path: must not contain '..': {path}"
        if len(part) > MAX_PATH_ELEMENT:
            return f"invalid path: filenames must be less than or equal to {MAX_PATH_ELEMENT} characters"
    if parts[0].startswith("..") and len(parts[0]) > 2:
        return f"invalid path: must not start with '..': {path}"
    return None


def payload(source: Mapping[str, Any], configmap: Mapping[str, Any] | None) -> dict[str, tuple[bytes, int]]:
    """The files of a ``configMap`` volume source: path → (content, mode). MountFailed as the kubelet fails."""
    name, optional = source.get("name", ""), bool(source.get("optional"))
    if configmap is None:
        if optional:
            return {}
        raise MountFailed(f'configmap "{name}" not found')
    default_mode = int(source.get("defaultMode", DEFAULT_MODE))
    contents: dict[str, bytes] = {key: str(value).encode() for key, value in (configmap.get("data") or {}).items()}
    for key, value in (configmap.get("binaryData") or {}).items():
        contents[key] = base64.b64decode(value)
    items = source.get("items") or []
    if not items:
        files = {key: (content, default_mode) for key, content in contents.items()}
    else:
        files = {}
        for item in items:
            if item["key"] not in contents:
                if optional:
                    continue
                raise MountFailed(f"configmap references non-existent config key: {item['key']}")
            files[item["path"]] = (contents[item["key"]], int(item.get("mode", default_mode)))
    for path in files:
        problem = _path_problem(path)
        if problem is not None:
            raise MountFailed(problem)
    return files


def _timestamped_dir(target: Path) -> Path:
    # os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05.")): a random suffix after the dot.
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    while True:
        candidate = target / f"{stamp}{secrets.randbelow(10**10)}"
        try:
            candidate.mkdir(mode=0o755)
        except FileExistsError:
            continue
        return candidate


def current(target: Path) -> dict[str, tuple[bytes, int]] | None:
    """The payload the volume holds now (None before its first write)."""
    data = target / DATA_DIR
    if not data.is_symlink():
        return None
    root = target / os.readlink(data)
    found = {}
    for file in root.rglob("*"):
        if file.is_file():
            found[file.relative_to(root).as_posix()] = (file.read_bytes(), file.stat().st_mode & 0o777)
    return found


def write(target: Path, files: Mapping[str, tuple[bytes, int]]) -> bool:
    """``AtomicWriter.Write``: the payload into ``target`` (created if needed); False when it holds it already."""
    target.mkdir(parents=True, exist_ok=True)
    if current(target) == dict(files):
        return False
    old = target / os.readlink(target / DATA_DIR) if (target / DATA_DIR).is_symlink() else None
    # pathsToRemove: what the old payload had (its timestamped directory), never whatever else is in the target
    old_names = {p.name for p in old.iterdir()} if old is not None else set()
    fresh = _timestamped_dir(target)
    for path, (content, mode) in files.items():
        file = fresh / path
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        file.write_bytes(content)
        file.chmod(mode)
    swap = target / NEW_DATA_DIR
    swap.unlink(missing_ok=True)
    swap.symlink_to(fresh.name)
    swap.replace(target / DATA_DIR)  # rename(2): readers see the old payload or the new one, never a mix
    names = {path.split("/", 1)[0] for path in files}
    for name in sorted(names):
        link = target / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA_DIR}/{name}")
    for name in old_names - names:
        (target / name).unlink(missing_ok=True)
    if old is not None and old != fresh:
        for directory in [old, *old.rglob("*")]:
            if directory.is_dir():
                directory.chmod(0o755)  # a mode such as 0o444 on a file never keeps its directory from removal
        shutil.rmtree(old)
    return True
