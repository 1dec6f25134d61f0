# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agent's DownloadBundle on a host: prune old revisions, place ``bundle.tar``, unpack it safely.

Follows the CodeDeploy agent (``command_executor.rb``): the retention rule of ``cleanup_old_archives``, the
bundle always named ``bundle.tar``, the unpacked revision in ``deployment-archive``, a single top-level folder
stripped when it holds an AppSpec, ``<dg-id>_most_recent_install`` written last. The deliberate difference is
safety: every member of the bundle is checked before anything is written, and a bundle with a member that
would land outside ``deployment-archive`` (absolute or ``..`` names, links pointing out, members written
through a link), a name or link target holding a control character, a device file or FIFO, or more unpacked
bytes than allowed is refused whole.

Archives are read with Python's own tarfile and zipfile, never with a shell or the ``tar``/``unzip`` commands.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional, Sequence

from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DeploymentRoot,
    DeploymentRootError,
    append_deployments_log,
    bundle_store_dir,
    ongoing,
    replacing,
    validate_deployment_group_id,
    write_atomically,
    write_pointer,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import OperatorError

ARCHIVE_TYPES = ("tar", "tgz", "zip")
BUNDLE_TYPES = ARCHIVE_TYPES + ("directory",)
DEFAULT_MAX_REVISIONS = 5
DEFAULT_MAX_UNPACKED_SIZE = 2 * 1024 ** 3
# Written last into the deployment directory: the digest of the bundle that deployment-archive holds, so that
# a run interrupted half-way is redone and a finished one is not.
ARCHIVE_MARKER_NAME = "deployment-archive.sha256"
# Where the bundle is unpacked before it becomes deployment-archive (the agent's own scratch name).
UNPACK_DIR_NAME = "deployment-archive-temp"
ARCHIVE_LABEL = "bundle.tar member"
APPSPEC_NAME_PATTERN = re.compile("appspec", re.IGNORECASE)
MULTIPART_ETAG_PATTERN = re.compile(r"^[0-9a-fA-F]{32}-\d+$")
SHA256_PATTERN = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_LINK_TARGET_BYTES = 4096
# A pushed bundle no kept revision uses, or a copy into the store that never finished, is removed once this old:
# a push and the DownloadBundle that takes it are one module run, far shorter than this.
STALE_STORE_SECONDS = 3600
COPY_CHUNK = 1024 * 1024

# Agent messages, verbatim.
MSG_ETAG_MISMATCH = "Expected deployment artifact bundle etag {expected} but was actually {actual}"
MSG_STRIPPING = "Stripping leading directory from archive bundle contents."
MSG_DELETE = "Delete Files {}"
MSG_INVALID_MAX_REVISIONS = "Invalid configuration :max_revision={}"
# Ours, beside the agent's "Delete Files".
MSG_DELETE_BUNDLES = "Delete pushed bundles no kept revision uses {}"

FILE, DIRECTORY, SYMLINK, HARDLINK = "file", "directory", "symlink", "hard link"
SPECIAL_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class BundleError(OperatorError):
    """A bundle or option that cannot be deployed; the message names the file or member and the fix."""


@dataclass(frozen=True)
class Member:
    """One entry of a bundle: its name as stored, its kind, its size and, for links, its target."""

    name: str
    kind: str
    size: int = 0
    link_target: Optional[str] = None


@dataclass(frozen=True)
class BundleInspection:
    """What a bundle holds, checked: safe to unpack under the limits it was checked against."""

    sha256: str
    unpacked_size: int
    stripped_top_folder: Optional[str]


@dataclass
class DownloadPlan:
    """What DownloadBundle will do on this host; ``changed`` is False when it has nothing to do."""

    layout: DeploymentRoot
    deployment_id: str
    src: str
    bundle_type: str
    inspection: BundleInspection
    pruned: list[str]
    unpack: bool
    update_pointer: bool
    warnings: list[str] = field(default_factory=list)
    pruned_bundles: list[str] = field(default_factory=list)

    @property
    def deployment_dir(self) -> str:
        return self.layout.deployment_dir(self.deployment_id)

    @property
    def archive_dir(self) -> str:
        return self.layout.archive_dir(self.deployment_id)

    @property
    def bundle_path(self) -> Optional[str]:
        return None if self.bundle_type == "directory" else self.layout.bundle_path(self.deployment_id)

    @property
    def changed(self) -> bool:
        return bool(self.pruned or self.pruned_bundles) or self.unpack or self.update_pointer


# ---------------------------------------------------------------------------------------------------------------
# Options


def check_max_revisions(max_revisions: int) -> None:
    if max_revisions < 1:
        raise BundleError(
            f"max_revisions must be 1 or more: it counts the new deployment's directory, so {max_revisions} would "
            f"delete the revision being deployed (the agent refuses it too: "
            f"{MSG_INVALID_MAX_REVISIONS.format(max_revisions)})")


def check_verification_options(bundle_type: str, sha256: Optional[str], etag: Optional[str]) -> None:
    if bundle_type == "directory" and (sha256 or etag):
        raise BundleError("sha256 and etag verify a bundle file; with bundle_type directory there is none: "
                          "leave them out, or give the archive as src with its bundle_type")
    if sha256 and not SHA256_PATTERN.match(sha256):
        raise BundleError(f"sha256 {sha256!r} is not a SHA-256 digest: expected 64 hexadecimal digits")


# ---------------------------------------------------------------------------------------------------------------
# Pruning (the agent's cleanup_old_archives)


def plan_pruning(entries: Sequence[tuple[str, float]], current: str, last_successful: Optional[str],
                 max_revisions: int) -> list[str]:
    """Names of the group's entries to delete so that ``max_revisions`` remain counting ``current``.

    ``entries`` are (name, mtime) of everything in the group directory. The number to delete is computed before
    the last-successful entry is set aside, as the agent does; it is then never chosen, so that one more entry
    may remain.
    """
    check_max_revisions(max_revisions)
    others = [(name, mtime) for name, mtime in entries if name != current]
    extra = len(others) - max_revisions + 1
    if extra <= 0:
        return []
    candidates = [(name, mtime) for name, mtime in others if name != last_successful]
    oldest_first = sorted(candidates, key=lambda entry: (entry[1], entry[0]))
    return [name for name, mtime in oldest_first[:extra]]


def list_group_entries(group_dir: str) -> list[tuple[str, float]]:
    try:
        names = os.listdir(group_dir)
    except FileNotFoundError:
        return []
    entries = []
    for name in names:
        with contextlib.suppress(FileNotFoundError):  # removed or renamed meanwhile by another group's run
            entries.append((name, os.lstat(os.path.join(group_dir, name)).st_mtime))
    return entries


def entry_name_in_group(group_dir: str, path: Optional[str]) -> Optional[str]:
    """The group entry a pointer file names, or None when it names nothing in this group."""
    if not path:
        return None
    parent, name = os.path.split(os.path.normpath(path))
    return name if parent == os.path.normpath(group_dir) else None


def plan_store_pruning(store: Sequence[tuple[str, float]], kept: set[str], released: set[str], now: float,
                       stale_after: float = STALE_STORE_SECONDS) -> list[str]:
    """Names of the bundle store's files (``<sha256>.<type>``, copies in progress ``*.partial``) to delete.

    ``kept`` are the digests of the bundles that revisions still kept on the host (every group's) unpacked, and the
    one being deployed; ``released`` those of the revisions this run prunes. A bundle no kept revision uses goes
    when a pruned revision used it, or once stale: one pushed for a deployment that has not yet taken it is young.
    """
    doomed = []
    for name, mtime in store:
        stale = now - mtime > stale_after
        if name.endswith(".partial"):
            if stale:
                doomed.append(name)
            continue
        digest = name.split(".", 1)[0]
        if digest not in kept and (digest in released or stale):
            doomed.append(name)
    return sorted(doomed)


def unpacked_digests(deployment_root: str, skipped: Iterable[str] = ()) -> dict[str, str]:
    """Deployment directory -> digest of the bundle it unpacked, for every group under the root but ``skipped``."""
    digests = {}
    skip = set(skipped)
    for group in os.listdir(deployment_root) if os.path.isdir(deployment_root) else []:
        try:
            validate_deployment_group_id(group)
        except DeploymentRootError:
            continue  # deployment-instructions, deployment-logs, fleetops-bundles, ...
        group_dir = os.path.join(deployment_root, group)
        for name, _mtime in list_group_entries(group_dir):
            directory = os.path.join(group_dir, name)
            if directory not in skip:
                digest = read_archive_marker(directory)
                if digest:
                    digests[directory] = digest
    return digests


def plan_bundle_store_pruning(layout: DeploymentRoot, pruned: Sequence[str], current_sha256: str) -> list[str]:
    """Paths of the bundle store to delete along with the pruned revision directories (read only)."""
    released = {digest for digest in (read_archive_marker(path) for path in pruned) if digest}
    kept = set(unpacked_digests(layout.root, pruned).values()) | {current_sha256}
    store = bundle_store_dir(layout.root)
    return [os.path.join(store, name) for name in
            plan_store_pruning(list_group_entries(store), kept, released, time.time())]


# ---------------------------------------------------------------------------------------------------------------
# Digests


def file_digests(path: str, with_md5: bool = False) -> tuple[str, Optional[str]]:
    """(sha256, md5 or None) of a file, read once."""
    sha256 = hashlib.sha256()
    md5 = hashlib.new("md5", usedforsecurity=False) if with_md5 else None
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(COPY_CHUNK), b""):
            sha256.update(chunk)
            if md5 is not None:
                md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest() if md5 is not None else None


def check_sha256(expected: str, actual: str, src: str) -> None:
    if expected.lower() != actual:
        raise BundleError(f"src {src} has sha256 {actual}, not the expected {expected.lower()}: the bundle is not "
                          "the revision that was fetched; fetch it again")


def check_etag(expected: str, md5_hex: str, sha256_given: bool) -> Optional[str]:
    """Compare an S3 ETag with the file's MD5, quotes ignored as the agent does; a warning when it cannot be.

    A multipart upload's ETag is the MD5 of the parts' MD5s followed by ``-<parts>``: without the part size it
    cannot be recomputed from the file.
    """
    bare = expected.replace('"', "")
    if MULTIPART_ETAG_PATTERN.match(bare):
        trust = ("the bundle is verified by sha256 only" if sha256_given
                 else "nothing verifies the bundle's content: give sha256 to verify it")
        return f"etag {expected} is a multipart upload ETag, which cannot be recomputed from the file; {trust}"
    if bare.lower() != md5_hex:
        raise BundleError(MSG_ETAG_MISMATCH.format(expected=expected, actual=md5_hex))
    return None


def directory_digest(root: str) -> str:
    """A sha256 over a directory's names, kinds, modes and contents: the ``bundle_sha256`` of a directory."""
    digest = hashlib.sha256()
    for relative, status in _walk(root):
        path = os.path.join(root, relative)
        if stat.S_ISREG(status.st_mode):
            content = file_digests(path)[0]
        elif stat.S_ISLNK(status.st_mode):
            content = os.readlink(path)
        else:
            content = ""
        digest.update(json.dumps([relative, stat.S_IFMT(status.st_mode), stat.S_IMODE(status.st_mode), content])
                      .encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Members: listing and checks


def tar_members(path: str) -> list[Member]:
    try:
        with tarfile.open(path, "r:*") as archive:
            return [_tar_member(info) for info in archive.getmembers()]
    except (tarfile.TarError, EOFError, OSError) as error:
        reason = str(error) if isinstance(error, OSError) else "plain, gzip, bzip2 or xz"
        raise BundleError(f"{path} is not a readable tar archive ({reason}): check bundle_type and the file")


def _tar_member(info: tarfile.TarInfo) -> Member:
    if info.isreg():
        return Member(info.name, FILE, info.size)
    if info.isdir():
        return Member(info.name, DIRECTORY)
    if info.issym():
        return Member(info.name, SYMLINK, link_target=info.linkname)
    if info.islnk():
        return Member(info.name, HARDLINK, link_target=info.linkname)
    if info.isfifo():
        return Member(info.name, "a FIFO")
    if info.ischr():
        return Member(info.name, "a character device")
    if info.isblk():
        return Member(info.name, "a block device")
    return Member(info.name, f"of unknown tar type {info.type!r}")


def zip_members(path: str) -> list[Member]:
    try:
        with zipfile.ZipFile(path) as archive:
            return [_zip_member(archive, info) for info in archive.infolist()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, RuntimeError) as error:
        raise BundleError(f"{path} is not a readable zip archive ({error}): check bundle_type and the file")


def _zip_unix_mode(info: zipfile.ZipInfo) -> int:
    """The Unix mode a zip entry carries (0 when it was not made on Unix, or has none)."""
    return (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Member:
    file_type = stat.S_IFMT(_zip_unix_mode(info))
    if file_type == stat.S_IFLNK:
        return Member(info.filename, SYMLINK, link_target=_zip_link_target(archive, info))
    if file_type in SPECIAL_KINDS:
        return Member(info.filename, SPECIAL_KINDS[file_type])
    if info.is_dir() or file_type == stat.S_IFDIR:
        return Member(info.filename, DIRECTORY)
    return Member(info.filename, FILE, info.file_size)


def _zip_link_target(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    if info.file_size > MAX_LINK_TARGET_BYTES:
        raise BundleError(f'{ARCHIVE_LABEL} "{info.filename}" is a symlink with a {info.file_size}-byte target: '
                          f"link targets are at most {MAX_LINK_TARGET_BYTES} bytes")
    return archive.read(info).decode("utf-8", "surrogateescape")


def directory_members(root: str) -> list[Member]:
    if not os.path.isdir(root):
        raise BundleError(f"src {root} is not a directory: bundle_type directory takes a directory on the host")
    members = []
    for relative, status in _walk(root):
        file_type = stat.S_IFMT(status.st_mode)
        if file_type == stat.S_IFLNK:
            members.append(Member(relative, SYMLINK, link_target=os.readlink(os.path.join(root, relative))))
        elif file_type == stat.S_IFDIR:
            members.append(Member(relative, DIRECTORY))
        elif file_type == stat.S_IFREG:
            members.append(Member(relative, FILE, status.st_size))
        else:
            members.append(Member(relative, SPECIAL_KINDS.get(file_type, "of an unknown file type")))
    return members


def _walk(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of everything under ``root``, sorted, never following links."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            yield os.path.relpath(path, root), os.lstat(path)


# C0 controls, DEL and C1 controls. A newline in a name would split the line recording it in the cleanup file (and
# in every log), the others rewrite the operator's terminal; no revision needs them.
CONTROL_CHARACTER_PATTERN = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROL_CHARACTER_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL"}


def printable_name(name: str) -> str:
    """A name as the operator can read it on one line: control characters and backslashes as Python escapes."""
    return CONTROL_CHARACTER_PATTERN.sub(lambda match: ascii(match.group())[1:-1],
                                         name.replace("\\", "\\\\"))


def control_character_problem(text: str) -> Optional[str]:
    """Which control character ``text`` holds first (e.g. "a newline (U+000A)"), or None."""
    match = CONTROL_CHARACTER_PATTERN.search(text)
    if match is None:
        return None
    character = match.group()
    named = CONTROL_CHARACTER_NAMES.get(character, "a control character")
    return f"{named} (U+{ord(character):04X})"


def normalise_member_name(name: str) -> Optional[str]:
    """The path a member lands on, relative to the bundle root ("." for the root), or None if outside it."""
    if name.startswith("/"):
        return None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts) or "."


def _symlink_problem(member_path: str, target: str, symlinks: set[str]) -> Optional[str]:
    """Why a symlink at ``member_path`` may point outside the bundle, or None when it cannot.

    The target is followed component by component as the kernel would. A ``..`` after a component that is itself
    a symlink of the bundle climbs from wherever that link points, which text alone cannot tell: refused too.
    """
    if target.startswith("/"):
        return "outside the bundle: links must point to a path inside it"
    parts = [part for part in posixpath.dirname(member_path).split("/") if part]
    through = None
    for component in (part for part in target.split("/") if part not in ("", ".")):
        if component != "..":
            parts.append(component)
            through = through or ("/".join(parts) if "/".join(parts) in symlinks else None)
        elif through:
            return (f'which climbs out of "{through}", a symlink of the bundle: write the target without ".." '
                    "after a link")
        elif not parts:
            return "outside the bundle: links must point to a path inside it"
        else:
            parts.pop()
    return None


def _ancestors(path: str) -> Iterator[str]:
    parent = posixpath.dirname(path)
    while parent:
        yield parent
        parent = posixpath.dirname(parent)


def validate_members(members: Sequence[Member], label: str, max_unpacked_size: int) -> int:
    """Refuse the whole bundle if any member could land outside it; return the unpacked size in bytes.

    Members written through a link the bundle itself creates are refused too: then every member lands where
    its name says, and checking names and link targets as text is enough.
    """
    for member in members:
        for what, text in (("its name", member.name), ("its link target", member.link_target or "")):
            problem = control_character_problem(text)
            if problem:
                raise BundleError(f'{label} "{printable_name(member.name)}" has {problem} in {what}: names and '
                                  "link targets of a bundle may not hold control characters; rename it in the "
                                  "revision")
    paths = [normalise_member_name(member.name) for member in members]
    for member, path in zip(members, paths):
        if path is None:
            raise BundleError(f'{label} "{member.name}" escapes the bundle: member names must be relative paths '
                              "inside it")
    kinds = {path: member.kind for member, path in zip(members, paths)}
    _check_no_link_shares_a_name(members, paths, label, kinds)
    symlinks = {path for path, kind in kinds.items() if kind == SYMLINK}
    total = 0
    for member, path in zip(members, paths):
        _check_member(member, path, label, kinds, symlinks)
        total += member.size
        if max_unpacked_size and total > max_unpacked_size:
            raise BundleError(
                f"the bundle unpacks to more than max_unpacked_size ({max_unpacked_size} bytes): {label} "
                f'"{member.name}" ({member.size} bytes) passes the limit at {total} bytes. Raise '
                "max_unpacked_size if the revision really is this large (0 means no limit)")
    return total


def _check_no_link_shares_a_name(members: Sequence[Member], paths: Sequence[str], label: str,
                                 kinds: dict[str, str]) -> None:
    """Refuse a symlink and another kind of member at one path. The checks see the last member of a name, but
    extraction keeps a link a later directory of that name lands on: a link hidden so would be written through."""
    for member, path in zip(members, paths):
        if (member.kind == SYMLINK) != (kinds[path] == SYMLINK):
            other = kinds[path] if member.kind == SYMLINK else member.kind
            raise BundleError(f'{label} "{member.name}" is both a symlink and a {other} in the bundle: keep one '
                              "member of that name in the revision")


def _check_member(member: Member, path: str, label: str, kinds: dict[str, str], symlinks: set[str]) -> None:
    if member.kind not in (FILE, DIRECTORY, SYMLINK, HARDLINK):
        raise BundleError(f'{label} "{member.name}" is {member.kind}: a bundle may hold only regular files, '
                          "directories and links inside it")
    if path == "." and member.kind != DIRECTORY:
        raise BundleError(f'{label} "{member.name}" is a {member.kind} in place of the bundle root')
    through = next((ancestor for ancestor in _ancestors(path) if ancestor in symlinks), None)
    if through is not None:
        raise BundleError(f'{label} "{member.name}" would be written through "{through}", a symlink of the '
                          "bundle: put the member at its real path instead")
    problem = _symlink_problem(path, member.link_target or "", symlinks) if member.kind == SYMLINK else None
    if problem:
        raise BundleError(f'{label} "{member.name}" is a symlink to "{member.link_target}", {problem}')
    if member.kind == HARDLINK:
        target = normalise_member_name(member.link_target or "")
        if target is None:
            raise BundleError(f'{label} "{member.name}" is a hard link to "{member.link_target}", outside the '
                              "bundle: hard links must name a file of the bundle")
        if kinds.get(target) not in (FILE, HARDLINK) or any(a in symlinks for a in _ancestors(target)):
            raise BundleError(f'{label} "{member.name}" is a hard link to "{member.link_target}", which is not a '
                              "file of the bundle: hard links must name a file of the bundle")


def top_folder_holding_appspec(entries: Iterable[tuple[str, bool]]) -> Optional[str]:
    """The single top-level folder the agent strips (docs/codedeploy-agent.md, 1.5), from (relative path, is a directory)
    pairs: the only root entry, a directory, one of whose entries has a name containing "appspec" in any case."""
    tops: dict[str, bool] = {}
    children: set[str] = set()
    for path, is_directory in entries:
        parts = path.split("/", 2)
        tops[parts[0]] = tops.get(parts[0], False) or len(parts) > 1 or is_directory
        if len(parts) > 1:
            children.add(parts[1])
    if len(tops) != 1:
        return None
    top, top_is_directory = next(iter(tops.items()))
    if top_is_directory and any(APPSPEC_NAME_PATTERN.search(child) for child in children):
        return top
    return None


def top_folder_to_strip(members: Iterable[Member]) -> Optional[str]:
    """The folder the agent strips from this bundle's members, or None."""
    paths = ((normalise_member_name(member.name), member.kind == DIRECTORY) for member in members)
    return top_folder_holding_appspec((path, is_directory) for path, is_directory in paths
                                      if path not in (None, "."))


def inspect_bundle(src: str, bundle_type: str, max_unpacked_size: int, sha256: Optional[str] = None,
                   etag: Optional[str] = None) -> tuple[BundleInspection, list[str]]:
    """Verify and check every member of ``src`` without writing anything; return it with any warnings."""
    if bundle_type == "directory":
        members = directory_members(src)
        size = validate_members(members, f'src directory "{src}" entry', max_unpacked_size)
        return BundleInspection(directory_digest(src), size, None), []
    if not os.path.isfile(src):
        raise BundleError(f"src {src} is not a file on the host: copy the bundle there first, or use "
                          "bundle_type directory for a directory")
    actual_sha256, md5 = file_digests(src, with_md5=bool(etag))
    warnings = []
    if sha256:
        check_sha256(sha256, actual_sha256, src)
    if etag:
        warning = check_etag(etag, md5 or "", bool(sha256))
        if warning:
            warnings.append(warning)
    members = zip_members(src) if bundle_type == "zip" else tar_members(src)
    size = validate_members(members, ARCHIVE_LABEL, max_unpacked_size)
    return BundleInspection(actual_sha256, size, top_folder_to_strip(members)), warnings


# ---------------------------------------------------------------------------------------------------------------
# Writing


def place_bundle(src: str, destination: str, expected_sha256: str,
                 mismatch: str = "src {src} changed while it was being deployed: run the task again") -> None:
    """Copy ``src`` to ``destination`` atomically, checking that it is still the bundle that was inspected. The copy
    in progress has a name of its own (``<name>.<random>.partial``): two deployment groups placing the same bundle
    on one host at once never write into one file, and a failed copy leaves nothing behind."""
    digest = hashlib.sha256()
    with open(src, "rb") as source, replacing(destination, os.path.basename(destination) + ".", ".partial") as target:
        for chunk in iter(lambda: source.read(COPY_CHUNK), b""):
            digest.update(chunk)
            target.write(chunk)
        if digest.hexdigest() != expected_sha256:
            raise BundleError(mismatch.format(src=src, actual=digest.hexdigest()))


def receive_pushed_bundle(pushed: str, destination: str, expected_sha256: str) -> None:
    """Store a bundle the controller has just pushed under its content address, only if it arrived intact: a host
    never keeps a corrupted bundle under a name that says otherwise. The pushed file is removed either way."""
    try:
        os.makedirs(os.path.dirname(destination), mode=0o700, exist_ok=True)
        place_bundle(pushed, destination, expected_sha256, mismatch=(
            "The bundle pushed to {src} has sha256 {actual}, not " + expected_sha256
            + ": it was damaged in transfer. Run the deployment again."))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pushed)


def _trusted_extraction() -> dict[str, object]:
    # Members are checked before extraction; keep tarfile's full fidelity (owners, modes) on Pythons with filters.
    return {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}


def unpack_tar(bundle: str, destination: str) -> None:
    """Extract with modes, times and, as root, owners (by name first, as GNU tar does)."""
    with tarfile.open(bundle, "r:*") as archive:
        archive.extractall(destination, numeric_owner=False, **_trusted_extraction())


def unpack_zip(bundle: str, destination: str) -> None:
    """Extract as unzip does: Unix modes and symlinks restored, times kept."""
    directories: list[tuple[str, int, float]] = []
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            member = _zip_member(archive, info)
            path = os.path.join(destination, normalise_member_name(info.filename) or ".")
            mode = stat.S_IMODE(_zip_unix_mode(info))
            mtime = _zip_mtime(info)
            if member.kind == DIRECTORY:
                os.makedirs(path, exist_ok=True)
                directories.append((path, mode, mtime))
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.lexists(path):
                os.unlink(path)
            if member.kind == SYMLINK:
                os.symlink(member.link_target or "", path)
                continue
            with archive.open(info) as source, open(path, "wb") as target:
                shutil.copyfileobj(source, target, COPY_CHUNK)
            if mode:
                os.chmod(path, mode)
            os.utime(path, (mtime, mtime))
    # Directories last and deepest first, so that a read-only directory does not block its own contents.
    for path, mode, mtime in reversed(directories):
        if mode:
            os.chmod(path, mode)
        os.utime(path, (mtime, mtime))


def _zip_mtime(info: zipfile.ZipInfo) -> float:
    try:
        return time.mktime(info.date_time + (0, 0, -1))
    except (OverflowError, ValueError):
        return time.time()


def copy_directory(source: str, destination: str) -> None:
    """Copy a revision directory with modes, times, symlinks as symlinks and, as root, owners."""
    as_root = os.geteuid() == 0
    os.makedirs(destination)
    directories = [("", os.lstat(source))]
    for relative, status in _walk(source):
        src_path, dst_path = os.path.join(source, relative), os.path.join(destination, relative)
        if stat.S_ISDIR(status.st_mode):
            os.mkdir(dst_path)
            directories.append((relative, status))
            continue
        if stat.S_ISLNK(status.st_mode):
            os.symlink(os.readlink(src_path), dst_path)
        else:
            shutil.copy2(src_path, dst_path, follow_symlinks=False)
        if as_root:
            os.lchown(dst_path, status.st_uid, status.st_gid)
    for relative, status in reversed(directories):
        dst_path = os.path.join(destination, relative)
        if as_root:
            os.chown(dst_path, status.st_uid, status.st_gid)
        os.chmod(dst_path, stat.S_IMODE(status.st_mode))
        os.utime(dst_path, ns=(status.st_atime_ns, status.st_mtime_ns))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def read_archive_marker(deployment_dir: str) -> Optional[str]:
    try:
        with open(os.path.join(deployment_dir, ARCHIVE_MARKER_NAME), encoding="utf-8") as handle:
            return handle.read().strip() or None
    except (FileNotFoundError, NotADirectoryError):  # not unpacked, or a file in the group directory
        return None


# ---------------------------------------------------------------------------------------------------------------
# DownloadBundle: plan, then apply


def plan_download_bundle(layout: DeploymentRoot, deployment_id: str, src: str, bundle_type: str,
                         max_revisions: int, max_unpacked_size: int, sha256: Optional[str] = None,
                         etag: Optional[str] = None) -> DownloadPlan:
    """Check everything and decide what to do; reads the host, writes nothing."""
    if bundle_type not in BUNDLE_TYPES:
        raise BundleError(f"bundle_type {bundle_type!r} is not one of {', '.join(BUNDLE_TYPES)}")
    check_max_revisions(max_revisions)
    check_verification_options(bundle_type, sha256, etag)
    inspection, warnings = inspect_bundle(src, bundle_type, max_unpacked_size, sha256, etag)
    deployment_dir = layout.deployment_dir(deployment_id)
    unpack = not (read_archive_marker(deployment_dir) == inspection.sha256
                  and os.path.isdir(layout.archive_dir(deployment_id)))
    last_successful = entry_name_in_group(layout.group_dir, layout.last_successful_dir())
    pruned = [os.path.join(layout.group_dir, name) for name in
              plan_pruning(list_group_entries(layout.group_dir), deployment_id, last_successful, max_revisions)]
    update_pointer = layout.most_recent_dir() != deployment_dir
    return DownloadPlan(layout, deployment_id, src, bundle_type, inspection, pruned, unpack, update_pointer,
                        warnings, plan_bundle_store_pruning(layout, pruned, inspection.sha256))


def apply_download_bundle(plan: DownloadPlan) -> list[str]:
    """Carry out a plan in the agent's order; return the messages appended to the deployments log."""
    if not plan.changed:
        return []
    messages = []
    layout, deployment_id = plan.layout, plan.deployment_id
    with ongoing(layout, deployment_id, "DownloadBundle"):
        if plan.pruned:
            messages.append(MSG_DELETE.format(json.dumps(plan.pruned)))
            for path in plan.pruned:
                _remove(path)
        if plan.pruned_bundles:
            messages.append(MSG_DELETE_BUNDLES.format(json.dumps(plan.pruned_bundles)))
            for path in plan.pruned_bundles:
                with contextlib.suppress(FileNotFoundError):  # another group's run may have removed it first
                    os.unlink(path)
        os.makedirs(plan.deployment_dir, exist_ok=True)
        if plan.unpack:
            if plan.inspection.stripped_top_folder:
                messages.append(MSG_STRIPPING)
            _unpack(plan)
        os.makedirs(layout.instructions_dir, exist_ok=True)
        write_pointer(layout.most_recent_file, plan.deployment_dir)
        append_deployments_log(layout, deployment_id, messages)
    return messages


def _unpack(plan: DownloadPlan) -> None:
    marker = os.path.join(plan.deployment_dir, ARCHIVE_MARKER_NAME)
    if os.path.lexists(marker):
        os.unlink(marker)
    scratch = os.path.join(plan.deployment_dir, UNPACK_DIR_NAME)
    _remove(scratch)
    try:
        _unpack_into(plan, scratch)
    except BaseException:
        # A half-unpacked revision is never used (no marker), and on a full disk its space is what the next
        # deployment, or the rollback, needs. The error that stopped it is the one to report.
        with contextlib.suppress(OSError):
            _remove(scratch)
        raise
    _remove(plan.archive_dir)
    top = plan.inspection.stripped_top_folder
    if top:
        os.rename(os.path.join(scratch, top), plan.archive_dir)
        os.rmdir(scratch)
    else:
        os.rename(scratch, plan.archive_dir)
    write_atomically(marker, plan.inspection.sha256)


def _unpack_into(plan: DownloadPlan, scratch: str) -> None:
    if plan.bundle_type == "directory":
        copy_directory(plan.src, scratch)
    else:
        bundle = plan.layout.bundle_path(plan.deployment_id)
        place_bundle(plan.src, bundle, plan.inspection.sha256)
        os.makedirs(scratch)
        try:
            if plan.bundle_type == "zip":
                unpack_zip(bundle, scratch)
            else:
                unpack_tar(bundle, scratch)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, RuntimeError) as error:
            raise BundleError(f"{bundle} could not be unpacked ({error}): check the bundle file and bundle_type")
