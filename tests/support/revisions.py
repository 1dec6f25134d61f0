# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build real revision trees and archives for tests, and put them on fleet hosts the way the role will."""
from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Mapping, Union

Content = Union[str, bytes]
EXECUTABLE = 0o755


def write_tree(root: Path, files: Mapping[str, Content], modes: Mapping[str, int] | None = None) -> Path:
    """Write ``files`` (relative path -> content) under ``root``; ``.sh`` files are executable unless moded."""
    modes = modes or {}
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
        path.chmod(modes.get(relative, EXECUTABLE if relative.endswith(".sh") else 0o644))
    return root


def archive_tree(source: Path, destination: Path, bundle_type: str, top_folder: str | None = None) -> Path:
    """Pack the contents of ``source`` as tar, tgz or zip, optionally under one top-level folder."""
    prefix = f"{top_folder}/" if top_folder else ""
    entries = sorted(p for p in source.rglob("*"))
    if bundle_type in ("tar", "tgz"):
        with tarfile.open(destination, "w:gz" if bundle_type == "tgz" else "w") as archive:
            for path in entries:
                archive.add(path, arcname=prefix + str(path.relative_to(source)), recursive=False)
    elif bundle_type == "zip":
        with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in entries:
                name = prefix + str(path.relative_to(source)) + ("/" if path.is_dir() else "")
                info = zipfile.ZipInfo(name)
                info.external_attr = (os.stat(path).st_mode & 0xFFFF) << 16
                archive.writestr(info, b"" if path.is_dir() else path.read_bytes())
    else:
        raise ValueError(f"unknown bundle type {bundle_type}")
    return destination


def tar_with_members(destination: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """A tar of hand-made members, for hostile bundles (absolute names, links out, FIFOs, ...)."""
    with tarfile.open(destination, "w") as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)
    return destination
