# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CodeDeploy agent's Install event: cleanup of the previous install, files, file_exists_behavior, permissions.

Three steps, as the rest of the collection:

- ``parse_cleanup`` reads the ``<dg-id>-cleanup`` file the previous Install left;
- ``plan_install`` turns the AppSpec and a snapshot of the host (``HostFacts``: the unpacked bundle, the
  destination paths, the tools and users) into an ``InstallPlan``, without touching anything. It simulates the
  cleanup on the snapshot first, so that every error the agent would raise while planning (a DISALLOW
  conflict, two sources for one destination, a permission given twice) and every error we can foresee (a
  missing user, a missing setfacl, a symlink out of the bundle) stops the Install before anything is removed
  or written. The agent, unlike this, has already removed the previous install when it finds a DISALLOW
  conflict;
- ``apply_install`` runs the cleanup and the plan the way the agent does: each path recorded in the new
  cleanup file before it is created, permissions after all copies, ``_last_successful_install`` at the end.

Standard library only (this runs on target hosts, Python 3.9+).
"""
from __future__ import annotations

import contextlib
import errno
import grp
import json
import os
import pwd
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union

from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import (
    MSG_DEFAULT_ACL_ON_FILE,
    MSG_ESCAPES_BUNDLE,
    Ace,
    AppSpecError,
    check_file_permission,
    load_revision_appspec,
    normalise_appspec,
    parse_ace,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DeploymentRoot,
    decode_cleanup_path,
    encode_cleanup_path,
    ongoing,
    write_atomically,
    write_pointer,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import OperatorError

# The agent's messages, verbatim.
MSG_FILE_EXISTS = "The deployment failed because a specified file already exists at this location: {}"
MSG_TWO_SOURCES = (
    "The deployment failed because the application specification file specifies two source files named {} and {}"
    " for the same destination ({}). Remove one of the source file paths from the AppSpec file, and then try"
    " again."
)
MSG_FILE_WHERE_DIRECTORY = (
    "The deployment failed because the application specification file calls for installing the file {}, but a"
    " file with that name already exists at the location ({}). Update your AppSpec file or directory structure,"
    " and then try again."
)
MSG_DIRECTORY_WHERE_FILE = (
    "The deployment failed because the application specification file includes an mkdir command more than once"
    " for the same destination path ({}) from ({}). Update the files section of the AppSpec file, and then try"
    " again."
)
MSG_PERMISSION_TWICE = (
    "The deployment failed because the permissions setting for ({}) is specified more than once in the"
    " application specification file. Update the files section of the AppSpec file, and then try again."
)
MSG_NOT_A_DIRECTORY = (
    "The revision needs a directory at {path}, but a {kind} stands there. No file_exists_behavior replaces a"
    " file by a directory (OVERWRITE and RETAIN apply to files only); nothing was installed. Remove {path} from"
    " the host, or change the destination in the files section of the AppSpec file."
)
MSG_NO_USER = "can't find user for {}"
MSG_NO_GROUP = "can't find group for {}"
MSG_NO_SUCH_SOURCE = "No such file or directory @ rb_sysopen - {}"
MSG_SETFACL_FAILED = (
    "The deployment failed because of a problem with the acls permission settings in the application"
    " specification file for this object: {path}. Failed command: {command}. Exit code: {rc}"
)
MSG_CONTEXT_FAILED = (
    "The deployment failed because the application specification file contains an error in the settings for the"
    " context parameter. Update the permissions section of the AppSpec file, and then try again. Failed command:"
    " {command}. Exit code: {rc}"
)

FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
SEMANAGE_PREFIX = "semanage\0"
RUBY_WHITESPACE = " \t\n\v\f\r\0"  # what Ruby's strip drops (Python's would drop other spaces too)
# Where setfacl, semanage and restorecon live, whatever PATH the module was started with.
TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TEMPORARY_PREFIX = ".fleetops-install-"
MAX_ID = 4294967294  # the largest uid or gid; 2**32 - 1 means "unchanged" to chown


class InstallError(OperatorError):
    """The Install cannot go on; the message says what and, where we can, how to fix it."""


# The cleanup file

@dataclass(frozen=True)
class CleanupEntry:
    """One line of ``<dg-id>-cleanup``: a path the previous Install created, or an SELinux fcontext it added."""

    path: str
    selinux_context: bool = False

    def line(self) -> str:
        return (SEMANAGE_PREFIX if self.selinux_context else "") + encode_cleanup_path(self.path) + "\n"


def parse_cleanup(text: str) -> list[CleanupEntry]:
    """The entries of a cleanup file in file order (they are undone in reverse).

    A last line without its newline was being written when the Install stopped, and is dropped, as the agent
    drops it.
    """
    *lines, _unfinished = text.split("\n")
    entries = []
    for line in lines:
        if line.startswith(SEMANAGE_PREFIX):
            path, selinux = line.split("\0", 1)[1], True
        else:
            path, selinux = line, False
        path = path.strip(RUBY_WHITESPACE)  # as the agent strips it
        if path:
            entries.append(CleanupEntry(decode_cleanup_path(path), selinux))
    return entries


# Host facts: what the plan is computed from

@dataclass(frozen=True)
class PathFacts:
    """What the host has at one path: ``kind`` without following a symlink, ``target_kind`` following it.

    Kinds: ``missing``, ``file`` (anything not a directory or symlink), ``directory``, ``symlink``
    (``kind`` only). ``children`` are the names in a directory listed in the cleanup file.
    """

    kind: str = "missing"
    target_kind: str = "missing"
    children: tuple[str, ...] = ()

    @property
    def exists(self) -> bool:
        """Ruby's File.exist?, which the agent uses: a dangling symlink does not exist."""
        return self.target_kind != "missing"

    @property
    def is_directory(self) -> bool:
        return self.target_kind == "directory"


MISSING = PathFacts()


@dataclass(frozen=True)
class ArchiveEntry:
    """One member of the unpacked bundle, keyed by its path relative to the bundle root ("" is the root).

    ``kind`` is ``file``, ``directory``, ``symlink`` or ``other`` (a FIFO, socket or device).
    ``children`` lists a directory's names in the order the filesystem gives them (the agent's order).
    A symlink keeps its target text, and ``resolves_to`` is the bundle-relative path it finally points at, or
    None when that is outside the bundle.
    """

    kind: str
    children: tuple[str, ...] = ()
    link_text: str = ""
    resolves_to: Optional[str] = None


@dataclass(frozen=True)
class HostFacts:
    archive_dir: str
    archive: Mapping[str, ArchiveEntry]
    paths: Mapping[str, PathFacts] = field(default_factory=dict)
    tools: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def path(self, path: str) -> PathFacts:
        return self.paths.get(path, MISSING)


# The layout of the files section: what each entry copies, from the bundle alone

@dataclass(frozen=True)
class SourceItem:
    """A directory to make, or a file or symlink to copy, for one ``files`` entry (walk order)."""

    kind: str  # "directory", "file" or "symlink"
    source: str  # absolute path in the bundle, as walked (through followed directory symlinks)
    destination: str
    link_text: str = ""


@dataclass(frozen=True)
class EntryLayout:
    source: str
    destination: str
    # The path whose missing ancestors the agent creates first: the destination directory of a directory
    # source, the destination file of a file source.
    anchor: str
    items: tuple[SourceItem, ...]


def layout_files(files: Sequence[Mapping[str, str]], facts: HostFacts) -> list[EntryLayout]:
    """Walk each ``files`` source in the bundle; refuse sources and symlinks that lead out of it."""
    return [_layout_entry(entry["source"], entry["destination"], facts) for entry in files]


def _layout_entry(source: str, destination: str, facts: HostFacts) -> EntryLayout:
    destination = absolute_path(destination, "destination", "files")
    relative = _resolve_source(source, facts)
    source_path = _bundle_path(facts.archive_dir, relative)
    entry = facts.archive.get(relative)
    if entry is None:
        raise InstallError(
            MSG_NO_SUCH_SOURCE.format(source_path) + ". The files section names the source {!r}, which is not in"
            " the revision; correct the source or add it to the bundle.".format(source))
    real = _follow(relative, entry, facts)
    if real is not None:
        items = [SourceItem("directory", source_path, destination)]
        items.extend(_walk_directory(real, source_path, destination, (real,), facts))
        return EntryLayout(source, destination, destination, tuple(items))
    target = os.path.join(destination, os.path.basename(source_path))
    return EntryLayout(source, destination, target, (_file_item(relative, entry, source_path, target),))


def _resolve_source(source: str, facts: HostFacts) -> str:
    """The bundle-relative path of a ``files`` source, following symlinks in its leading directories.

    A leading / or ./ stays in the bundle, as in the agent, which appends the source to the bundle's path.
    """
    current = ""
    parts = [part for part in source.split("/") if part not in ("", ".")]
    for index, part in enumerate(parts):
        if part == "..":
            if not current:
                raise InstallError(MSG_ESCAPES_BUNDLE.format(what="source file", path=source, section="files"))
            current = _parent(current)
            continue
        current = _join(current, part)
        entry = facts.archive.get(current)
        if entry is not None and entry.kind == "symlink" and index < len(parts) - 1:
            current = _inside_bundle(current, entry, facts)
    return current


def _follow(relative: str, entry: ArchiveEntry, facts: HostFacts) -> Optional[str]:
    """The real bundle path of a directory member, or of a symlink to a directory; None for anything else."""
    if entry.kind == "directory":
        return relative
    if entry.kind == "symlink":
        target = _inside_bundle(relative, entry, facts)
        target_entry = facts.archive.get(target)
        if target_entry is not None and target_entry.kind == "directory":
            return target
    return None


def _walk_directory(real: str, source_path: str, destination: str, walking: tuple[str, ...],
                    facts: HostFacts) -> list[SourceItem]:
    items: list[SourceItem] = []
    for name in facts.archive[real].children:
        relative = _join(real, name)
        entry = facts.archive[relative]
        child_source = os.path.join(source_path, name)
        child_destination = os.path.join(destination, name)
        directory = _follow(relative, entry, facts)
        if directory is None:
            items.append(_file_item(relative, entry, child_source, child_destination))
            continue
        if any(directory == "" or walked == directory or walked.startswith(directory + "/") for walked in walking):
            raise InstallError(
                "The revision's symbolic link {} points to {}, a directory that contains it: copying the directory"
                " it points to would never end. Remove the link from the bundle or point it elsewhere.".format(
                    relative, directory or "the bundle root"))
        items.append(SourceItem("directory", child_source, child_destination))
        items.extend(_walk_directory(directory, child_source, child_destination, walking + (directory,), facts))
    return items


def _file_item(relative: str, entry: ArchiveEntry, source_path: str, destination: str) -> SourceItem:
    if entry.kind == "symlink":
        return SourceItem("symlink", source_path, destination, entry.link_text)
    if entry.kind == "other":
        raise InstallError(
            "The revision's member {} is not a regular file, directory or symbolic link (a FIFO, socket or device);"
            " it cannot be installed. Remove it from the bundle.".format(relative))
    return SourceItem("file", source_path, destination)


def _inside_bundle(relative: str, entry: ArchiveEntry, facts: HostFacts) -> str:
    if entry.resolves_to is None:
        raise InstallError(
            "The revision's symbolic link {} points to {}, outside the revision bundle ({}); nothing was installed."
            " Bundle the file itself, or make the link point inside the bundle.".format(
                relative, entry.link_text, facts.archive_dir))
    return entry.resolves_to


def _join(relative: str, name: str) -> str:
    return "{}/{}".format(relative, name) if relative else name


def _parent(relative: str) -> str:
    return relative.rpartition("/")[0]


def _bundle_path(archive_dir: str, relative: str) -> str:
    return os.path.join(archive_dir, relative) if relative else archive_dir


def absolute_path(path: str, what: str, section: str) -> str:
    """A normalised absolute path (the agent's File.expand_path) from the AppSpec; relative paths are refused.

    The agent expands a relative path against its own working directory, which differs by how it was started
    (docs/codedeploy-agent.md, 3.1); a host without the agent has no such directory to agree with.
    """
    if not path.startswith("/"):
        raise InstallError(
            "The {} {!r} in the {} section of the AppSpec file is not an absolute path. Write it from the root,"
            " e.g. /var/www/html.".format(what, path, section))
    normalised = os.path.normpath(path)
    return "/" + normalised.lstrip("/")


def paths_to_inspect(layouts: Sequence[EntryLayout], permissions: Sequence[Mapping[str, Any]]) -> set[str]:
    """Every host path the plan looks at: destinations, their ancestors, and permission objects."""
    paths: set[str] = set()
    for layout in layouts:
        paths.update(_ancestors(layout.anchor))
        paths.update(item.destination for item in layout.items)
    for permission in permissions:
        if permission["object"].startswith("/"):
            paths.add(absolute_path(permission["object"], "object", "permissions"))
    return paths


def _ancestors(path: str) -> list[str]:
    """The directories above ``path``, nearest first, down to (not including) /."""
    found = []
    parent = os.path.dirname(path)
    while parent not in ("/", ""):
        found.append(parent)
        parent = os.path.dirname(parent)
    return found


# Cleanup of the previous install, simulated on the snapshot

def simulate_cleanup(entries: Sequence[CleanupEntry], paths: Mapping[str, PathFacts]) -> list[str]:
    """The paths the cleanup removes, in removal order: reverse file order; a directory only when emptied."""
    removed: list[str] = []
    gone: set[str] = set()
    recorded = recorded_paths(entries)
    for entry in reversed(entries):
        if entry.selinux_context:
            continue
        facts = paths.get(entry.path, MISSING)
        if facts.kind == "missing" or entry.path in gone:
            continue
        if any(paths.get(ancestor, MISSING).kind == "symlink" for ancestor in _ancestors(entry.path)
               if ancestor in recorded):
            continue  # reached through a link put where the install made a directory: run_cleanup leaves it
        if facts.kind == "directory" and not all(
                os.path.join(entry.path, name) in gone for name in facts.children):
            continue
        removed.append(entry.path)
        gone.add(entry.path)
    return removed


def after_cleanup(paths: Mapping[str, PathFacts], removed: Iterable[str]) -> dict[str, PathFacts]:
    """The snapshot as it will be once ``removed`` are gone (with everything under them)."""
    gone = set(removed)

    def survives(path: str) -> bool:
        return path not in gone and not any(ancestor in gone for ancestor in _ancestors(path))

    return {path: facts if survives(path) else MISSING for path, facts in paths.items()}


# Instructions

@dataclass(frozen=True)
class Copy:
    source: str
    destination: str
    link_text: Optional[str] = None  # a symlink to a file is re-created with the same target text
    replaces: bool = False  # OVERWRITE of a path that exists

    def to_json(self) -> dict[str, Any]:
        return {"type": "copy", "source": self.source, "destination": self.destination}


@dataclass(frozen=True)
class MakeDirectory:
    directory: str

    def to_json(self) -> dict[str, Any]:
        return {"type": "mkdir", "directory": self.directory}


@dataclass(frozen=True)
class ChangeMode:
    path: str
    mode: str

    def to_json(self) -> dict[str, Any]:
        return {"type": "chmod", "mode": self.mode, "file": self.path}


@dataclass(frozen=True)
class SetAcl:
    path: str
    entries: tuple[str, ...]  # as listed, normalised; the base entries are added from the mode when applied

    def to_json(self) -> dict[str, Any]:
        return {"type": "setfacl", "acl": list(self.entries), "file": self.path}


@dataclass(frozen=True)
class SetContext:
    path: str
    selinux_type: str
    user: Optional[str] = None
    selinux_range: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        return {"type": "semanage", "context": {"user": self.user, "role": None, "type": self.selinux_type,
                                                "range": self.selinux_range}, "file": self.path}


@dataclass(frozen=True)
class ChangeOwner:
    path: str
    owner: Optional[str]
    group: Optional[str]

    def to_json(self) -> dict[str, Any]:
        return {"type": "chown", "owner": self.owner, "group": self.group, "file": self.path}


Instruction = Union[Copy, MakeDirectory, ChangeMode, SetAcl, SetContext, ChangeOwner]
PERMISSION_INSTRUCTIONS = (ChangeMode, SetAcl, SetContext, ChangeOwner)


@dataclass
class InstallPlan:
    file_exists_behavior: str
    cleanup: list[CleanupEntry]
    removed: list[str]  # what the cleanup will remove, in order
    instructions: list[Instruction]
    retained: list[str]

    @property
    def copied(self) -> list[str]:
        return [i.destination for i in self.instructions if isinstance(i, Copy)]

    @property
    def created_dirs(self) -> list[str]:
        return [i.directory for i in self.instructions if isinstance(i, MakeDirectory)]

    def permissions(self) -> list[dict[str, Any]]:
        """Per object, in order: what the permission instructions set on it."""
        by_path: dict[str, dict[str, Any]] = {}
        for instruction in self.instructions:
            if not isinstance(instruction, PERMISSION_INSTRUCTIONS):
                continue
            record = by_path.setdefault(instruction.path, {
                "path": instruction.path, "mode": None, "owner": None, "group": None, "acls": [], "context": None})
            if isinstance(instruction, ChangeMode):
                record["mode"] = instruction.mode
            elif isinstance(instruction, SetAcl):
                record["acls"] = list(instruction.entries)
            elif isinstance(instruction, SetContext):
                record["context"] = {"name": instruction.user, "type": instruction.selinux_type,
                                     "range": instruction.selinux_range}
            else:
                record["owner"], record["group"] = instruction.owner, instruction.group
        return list(by_path.values())


def instructions_json(plan: InstallPlan) -> str:
    """``<dg-id>-install.json``: the instruction list, in the agent's shape."""
    return json.dumps({"instructions": [instruction.to_json() for instruction in plan.instructions]})


# Planning

def plan_install(appspec: Mapping[str, Any], facts: HostFacts, cleanup: Sequence[CleanupEntry],
                 file_exists_behavior: str = "DISALLOW",
                 layouts: Optional[Sequence[EntryLayout]] = None) -> InstallPlan:
    """Every instruction of the Install, checked against the host as it will be after the cleanup."""
    behavior = appspec.get("file_exists_behavior") or file_exists_behavior
    if behavior not in FILE_EXISTS_BEHAVIORS:
        raise InstallError(
            "The deployment failed because an invalid option was specified for fileExistsBehavior: {}. Valid"
            " options include OVERWRITE, RETAIN, and DISALLOW.".format(behavior))
    if layouts is None:
        layouts = layout_files(appspec["files"], facts)
    removed = simulate_cleanup(cleanup, facts.paths)
    builder = _Builder(after_cleanup(facts.paths, removed), behavior)
    for layout in layouts:
        builder.add_entry(layout)
    for index, permission in enumerate(appspec["permissions"]):
        builder.add_permission(permission, index)
    _check_host_can_apply(builder.instructions, facts)
    return InstallPlan(behavior, list(cleanup), removed, builder.instructions, builder.retained)


class _Builder:
    """The agent's CommandBuilder: instructions in order, and the checks it makes while adding them."""

    def __init__(self, paths: Mapping[str, PathFacts], behavior: str) -> None:
        self.paths = paths
        self.behavior = behavior
        self.instructions: list[Instruction] = []
        self.retained: list[str] = []
        self.copy_targets: dict[str, str] = {}  # destination -> source, in order
        self.made_directories: dict[str, None] = {}  # an ordered set
        self.permission_targets: set[str] = set()

    def facts(self, path: str) -> PathFacts:
        return self.paths.get(path, MISSING)

    def add_entry(self, layout: EntryLayout) -> None:
        self.make_missing_ancestors(layout.anchor)
        for item in layout.items:
            if item.kind == "directory":
                if not self.facts(item.destination).is_directory:
                    self.make_directory(item.destination)
            else:
                self.add_copy(item)

    def make_missing_ancestors(self, path: str) -> None:
        missing = []
        for ancestor in _ancestors(path):
            facts = self.facts(ancestor)
            if facts.is_directory:
                break
            if facts.kind != "missing":
                raise InstallError(not_a_directory_message(ancestor, facts))
            missing.append(ancestor)
        for ancestor in reversed(missing):
            self.make_directory(ancestor)

    def make_directory(self, directory: str) -> None:
        if directory in self.copy_targets:
            raise InstallError(MSG_DIRECTORY_WHERE_FILE.format(directory, self.copy_targets[directory]))
        if directory in self.made_directories:
            return
        if self.facts(directory).kind != "missing":
            # The agent plans the mkdir and dies in it ("File exists") with part of the revision copied.
            raise InstallError(not_a_directory_message(directory, self.facts(directory)))
        self.instructions.append(MakeDirectory(directory))
        self.made_directories[directory] = None

    def add_copy(self, item: SourceItem) -> None:
        existing = self.facts(item.destination)
        replaces = False
        # Anything at the path counts, a dangling symlink too: the agent's existence check follows the link, finds
        # nothing, and writes through it, outside the destination tree.
        if existing.kind != "missing":
            if self.behavior == "DISALLOW":
                raise InstallError(MSG_FILE_EXISTS.format(item.destination))
            if self.behavior == "RETAIN":
                self.retained.append(item.destination)
                return
            if existing.kind == "directory":
                raise InstallError(
                    "Cannot overwrite the directory {} with the file {} (file_exists_behavior OVERWRITE replaces"
                    " files, not directories). Remove the directory, or change the files section of the AppSpec"
                    " file.".format(item.destination, item.source))
            replaces = True
        if item.destination in self.copy_targets:
            raise InstallError(MSG_TWO_SOURCES.format(
                item.source, self.copy_targets[item.destination], item.destination))
        if item.destination in self.made_directories:
            raise InstallError(MSG_FILE_WHERE_DIRECTORY.format(item.source, item.destination))
        link_text = item.link_text if item.kind == "symlink" else None
        self.instructions.append(Copy(item.source, item.destination, link_text, replaces))
        self.copy_targets[item.destination] = item.source

    def add_permission(self, permission: Mapping[str, Any], index: int) -> None:
        target = absolute_path(permission["object"], "object", "permissions")
        if target in self.copy_targets:
            if "file" in permission["type"]:
                try:
                    check_file_permission(dict(permission), ("permissions", index))
                except AppSpecError as error:
                    raise InstallError(error.message) from None
                self.set_permissions(target, permission)
        elif target in self.made_directories or self.facts(target).is_directory:
            for match in matching_objects(permission, target, self.copy_targets, self.made_directories):
                self.set_permissions(match, permission)

    def set_permissions(self, path: str, permission: Mapping[str, Any]) -> None:
        if path in self.permission_targets:
            raise InstallError(MSG_PERMISSION_TWICE.format(path))
        self.permission_targets.add(path)
        if permission["mode"] is not None:
            self.instructions.append(ChangeMode(path, permission["mode"]))
        if permission["acls"]:
            self.instructions.append(SetAcl(path, tuple(parse_ace(ace).text() for ace in permission["acls"])))
        context = permission["context"]
        if context is not None:
            self.instructions.append(SetContext(path, context["type"], context.get("name"), context.get("range")))
        if permission["owner"] is not None or permission["group"] is not None:
            self.instructions.append(ChangeOwner(path, permission["owner"], permission["group"]))


def not_a_directory_message(path: str, facts: PathFacts) -> str:
    kind = {"symlink": "symbolic link" if facts.target_kind == "missing" else "symbolic link to a file"}.get(
        facts.kind, "file")
    return MSG_NOT_A_DIRECTORY.format(path=path, kind=kind)


def _check_host_can_apply(instructions: Sequence[Instruction], facts: HostFacts) -> None:
    """Refuse, before anything changes, what the agent would only find out half-way through the Install."""
    for instruction in instructions:
        if isinstance(instruction, ChangeOwner):
            if instruction.owner is not None and instruction.owner not in facts.users \
                    and numeric_id(instruction.owner) is None:
                raise InstallError(MSG_NO_USER.format(instruction.owner))
            if instruction.group is not None and instruction.group not in facts.groups \
                    and numeric_id(instruction.group) is None:
                raise InstallError(MSG_NO_GROUP.format(instruction.group))
        elif isinstance(instruction, SetAcl) and "setfacl" not in facts.tools:
            raise InstallError(
                "acls need setfacl on the host: install the acl package (the permissions section sets acls on"
                " {}).".format(instruction.path))
        elif isinstance(instruction, SetContext) and not {"semanage", "restorecon"} <= facts.tools:
            raise InstallError(
                "context needs semanage and restorecon on the host: install SELinux's policycoreutils-python-utils"
                " package (the permissions section sets an SELinux context on {}).".format(instruction.path))


# Permission matching

def matching_objects(permission: Mapping[str, Any], directory: str, copy_targets: Iterable[str],
                     made_directories: Iterable[str]) -> list[str]:
    """What a permission on a directory applies to: copied files, then created directories, below it.

    ``**`` matches every descendant; any other pattern and every ``except`` is a glob on the name of a
    direct child only. The directory itself is never included.
    """
    matches = []
    if "file" in permission["type"]:
        for path in copy_targets:
            if _permission_matches(permission, directory, path):
                if any(parse_ace(ace).default for ace in permission["acls"]):
                    raise InstallError(MSG_DEFAULT_ACL_ON_FILE)
                matches.append(path)
    if "directory" in permission["type"]:
        matches.extend(path for path in made_directories if _permission_matches(permission, directory, path))
    return matches


def _permission_matches(permission: Mapping[str, Any], directory: str, path: str) -> bool:
    prefix = directory.rstrip("/") + "/"
    if not path.startswith(prefix):
        return False
    name = path[len(prefix):]
    if permission["pattern"] != "**" and not matches_simple_glob(name, permission["pattern"]):
        return False
    return not any(matches_simple_glob(name, item) for item in permission["except"])


def matches_simple_glob(name: str, pattern: str) -> bool:
    """The agent's glob: only ``*`` is special, and a name with a / (not a direct child) never matches."""
    if "/" in name:
        return False
    expression = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(expression, name, re.DOTALL) is not None


# ACLs

def full_acl(entries: Sequence[str], mode: int) -> list[str]:
    """The ACL ``setfacl --set`` is given: the listed entries plus what the agent adds from the object's mode.

    Base user, group and other entries come from the mode; a mask (the group bits) when named entries have
    none; and with any default entry, the default base entries and a default mask (the default group's bits)
    that are not listed.
    """
    listed = [parse_ace(entry) for entry in entries]
    user, group, other = (mode >> 6) & 7, (mode >> 3) & 7, mode & 7
    added = [Ace(False, "user", "", user), Ace(False, "group", "", group), Ace(False, "other", "", other)]
    if any(not ace.default and ace.name for ace in listed) and not any(
            not ace.default and ace.kind == "mask" for ace in listed):
        added.append(Ace(False, "mask", "", group))
    if any(ace.default for ace in listed):
        defaults = [ace for ace in listed if ace.default]
        if not any(ace.kind == "user" and not ace.name for ace in defaults):
            added.append(Ace(True, "user", "", user))
        if not any(ace.kind == "group" and not ace.name for ace in defaults):
            added.append(Ace(True, "group", "", group))
        if not any(ace.kind == "other" for ace in defaults):
            added.append(Ace(True, "other", "", other))
        if any(ace.name for ace in defaults) and not any(ace.kind == "mask" for ace in defaults):
            default_group = next(ace for ace in defaults + added if ace.default and ace.kind == "group" and not ace.name)
            added.append(Ace(True, "mask", "", default_group.permissions))
    return [ace.text() for ace in listed + added]


# The AppSpec on the host

def load_appspec(given: Optional[Mapping[str, Any]], archive_dir: str, appspec_filename: str) -> dict[str, Any]:
    """The normalised AppSpec: the one parsed on the controller when given (checked again), else the bundle's."""
    if given is not None:
        return normalise_appspec(dict(given))[0]
    return load_revision_appspec(archive_dir, appspec_filename)[0]


# What the plan does, for the module's result and --diff

def plan_report(plan: InstallPlan) -> dict[str, Any]:
    return {
        "file_exists_behavior": plan.file_exists_behavior,
        "removed": list(plan.removed),
        "created_dirs": plan.created_dirs,
        "copied": plan.copied,
        "retained": list(plan.retained),
        "permissions_applied": plan.permissions(),
    }


def plan_diff(plan: InstallPlan, deployment_group_id: str) -> dict[str, str]:
    """Before: the paths the Install removes or replaces. After: the paths it installs, with their permissions."""
    replaced = [i.destination for i in plan.instructions if isinstance(i, Copy) and i.replaces]
    permissions = {record["path"]: record for record in plan.permissions()}
    installed = []
    for path in sorted(plan.created_dirs + plan.copied):
        suffix = "/" if path in plan.created_dirs else ""
        installed.append(path + suffix + _describe_permissions(permissions.get(path)))
    return {
        "before_header": "{} (paths removed or replaced)".format(deployment_group_id),
        "after_header": "{} (paths installed)".format(deployment_group_id),
        "before": "".join(path + "\n" for path in sorted(set(plan.removed) | set(replaced))),
        "after": "".join(line + "\n" for line in installed),
    }


def _describe_permissions(record: Optional[Mapping[str, Any]]) -> str:
    if record is None:
        return ""
    parts = ["{}={}".format(key, record[key]) for key in ("mode", "owner", "group") if record[key] is not None]
    if record["acls"]:
        parts.append("acls=" + ",".join(record["acls"]))
    if record["context"]:
        parts.append("context=" + record["context"]["type"])
    return " (" + " ".join(parts) + ")"


# Gathering the facts on the host

def scan_archive(archive_dir: str) -> dict[str, ArchiveEntry]:
    """Every member of the unpacked bundle, without following symlinks, directories in filesystem order."""
    real_root = os.path.realpath(archive_dir)
    archive: dict[str, ArchiveEntry] = {}

    def scan(relative: str) -> tuple[str, ...]:
        directory = _bundle_path(archive_dir, relative)
        with os.scandir(directory) as listing:
            members = list(listing)
        for member in members:
            child = _join(relative, member.name)
            if member.is_symlink():
                archive[child] = ArchiveEntry("symlink", link_text=os.readlink(member.path),
                                              resolves_to=_relative_inside(os.path.realpath(member.path), real_root))
            elif member.is_dir(follow_symlinks=False):
                archive[child] = ArchiveEntry("directory", children=scan(child))
            elif member.is_file(follow_symlinks=False):
                archive[child] = ArchiveEntry("file")
            else:
                archive[child] = ArchiveEntry("other")
        return tuple(member.name for member in members)

    archive[""] = ArchiveEntry("directory", children=scan(""))
    return archive


def _relative_inside(path: str, root: str) -> Optional[str]:
    if path == root:
        return ""
    if path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")) + 1:]
    return None


def inspect_path(path: str, with_children: bool = False) -> PathFacts:
    try:
        link_stat = os.lstat(path)
    except OSError:
        return MISSING
    kind = _kind(link_stat.st_mode)
    if kind == "symlink":
        try:
            target_kind = _kind(os.stat(path).st_mode)
        except OSError:
            target_kind = "missing"
    else:
        target_kind = kind
    children: tuple[str, ...] = ()
    if with_children and kind == "directory":
        children = tuple(os.listdir(path))
    return PathFacts(kind, target_kind, children)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    return "directory" if stat.S_ISDIR(mode) else "file"


def gather_facts(archive_dir: str, appspec: Mapping[str, Any],
                 cleanup: Sequence[CleanupEntry]) -> tuple[HostFacts, list[EntryLayout]]:
    """Read everything the plan needs from this host, changing nothing."""
    bundle = HostFacts(archive_dir, scan_archive(archive_dir))
    layouts = layout_files(appspec["files"], bundle)
    paths = {path: inspect_path(path) for path in paths_to_inspect(layouts, appspec["permissions"])}
    for entry in cleanup:
        if not entry.selinux_context:
            paths[entry.path] = inspect_path(entry.path, with_children=True)
    owners = {p["owner"] for p in appspec["permissions"] if p["owner"] is not None}
    groups = {p["group"] for p in appspec["permissions"] if p["group"] is not None}
    tools = frozenset(name for name in ("setfacl", "semanage", "restorecon") if find_tool(name))
    facts = HostFacts(archive_dir, bundle.archive, paths, tools,
                      frozenset(name for name in owners if user_id(name) is not None),
                      frozenset(name for name in groups if group_id(name) is not None))
    return facts, layouts


def find_tool(name: str) -> Optional[str]:
    search = os.pathsep.join(filter(None, (os.environ.get("PATH"), TOOL_PATH)))
    return shutil.which(name, path=search)


def numeric_id(name: str) -> Optional[int]:
    """``name`` as a numeric uid or gid, as chown(1) takes one that names no user or group; None if it is not."""
    if re.fullmatch(r"[0-9]{1,10}", name) and int(name) <= MAX_ID:
        return int(name)
    return None


def user_id(name: str) -> Optional[int]:
    """The uid of the user ``name``, else ``name`` read as a number; None when it is neither."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return numeric_id(name)


def group_id(name: str) -> Optional[int]:
    """The gid of the group ``name``, else ``name`` read as a number; None when it is neither."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return numeric_id(name)


# Applying

RunCommand = Callable[[list[str]], tuple[int, str, str]]


@dataclass
class InstallResult:
    removed: list[str] = field(default_factory=list)
    done: list[Instruction] = field(default_factory=list)


def run_cleanup(entries: Sequence[CleanupEntry], run_command: RunCommand) -> list[str]:
    """Undo the previous install in reverse order, as the agent does; return the paths removed."""
    removed = []
    semanage = find_tool("semanage")
    recorded = recorded_paths(entries)
    for entry in reversed(entries):
        if entry.selinux_context:
            if semanage:  # the agent ignores the outcome, and a host without SELinux tools
                run_command([semanage, "fcontext", "-d", entry.path])
            continue
        if _remove(entry.path, recorded):
            removed.append(entry.path)
    return removed


def recorded_paths(entries: Sequence[CleanupEntry]) -> set[str]:
    """The paths a cleanup file says the previous Install created (its SELinux lines name no path it made)."""
    return {entry.path for entry in entries if not entry.selinux_context}


def _remove(path: str, recorded: set[str]) -> bool:
    """Remove ``path``, a directory only when empty, without following a symlink where the install made a
    directory: such a link was put there since, and what it points to was never the install's to remove."""
    try:
        parent = _open_directory(os.path.dirname(path), recorded)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):  # gone, or not the directory the install made
            return False
        raise
    name = os.path.basename(path)
    try:
        try:
            is_directory = stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return False
        if not is_directory:
            os.unlink(name, dir_fd=parent)
            return True
        try:
            os.rmdir(name, dir_fd=parent)
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST):  # files someone else put there stay
                return False
            raise
        return True
    finally:
        os.close(parent)


def _open_directory(path: str, recorded: set[str]) -> int:
    """A descriptor of the directory ``path``, opened one component at a time (nothing can swap one meanwhile): a
    component the install made must be a directory still (ENOTDIR otherwise), others are followed as ever (an
    administrator's /var/www may be a link)."""
    descriptor = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    current = "/"
    for name in (part for part in path.split("/") if part):
        current = os.path.join(current, name)
        flags = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC | (os.O_NOFOLLOW if current in recorded else 0)
        try:
            below = os.open(name, flags, dir_fd=descriptor)
        finally:
            os.close(descriptor)
        descriptor = below
    return descriptor


def apply_install(plan: InstallPlan, layout: DeploymentRoot, deployment_id: str,
                  run_command: RunCommand, result: InstallResult) -> None:
    """Run the plan: cleanup, install.json, each instruction recorded before it acts, last_successful."""
    result.removed.extend(run_cleanup(plan.cleanup, run_command))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(layout.cleanup_file)
    write_atomically(layout.install_json, instructions_json(plan))
    tools = {name: find_tool(name) or name for name in ("setfacl", "semanage", "restorecon")}
    with open(layout.cleanup_file, "w", encoding="utf-8", errors="surrogateescape") as cleanup_file:
        def record(line: str) -> None:
            cleanup_file.write(line)
            cleanup_file.flush()

        for instruction in plan.instructions:
            _execute(instruction, record, run_command, tools)
            result.done.append(instruction)
    write_pointer(layout.last_successful_file, layout.deployment_dir(deployment_id))


def _execute(instruction: Instruction, record: Callable[[str], None], run_command: RunCommand,
             tools: Mapping[str, str]) -> None:
    if isinstance(instruction, MakeDirectory):
        record(CleanupEntry(instruction.directory).line())
        os.mkdir(instruction.directory)
    elif isinstance(instruction, Copy):
        record(CleanupEntry(instruction.destination).line())
        _copy(instruction)
    else:
        _set_permission(instruction, record, run_command, tools)


def _set_permission(instruction: Instruction, record: Callable[[str], None], run_command: RunCommand,
                    tools: Mapping[str, str]) -> None:
    """One permission instruction, on the installed object itself: a symlink there is never followed, so that a
    link the revision installed cannot carry a mode, an owner, an ACL or a context to the file it points to. A
    symlink has no mode, ACL or context of its own; it only gets its owner (lchown)."""
    with _installed_object(instruction.path) as (handle, mode):
        if handle is None:
            if isinstance(instruction, ChangeOwner):
                os.chown(instruction.path, *_owner_ids(instruction), follow_symlinks=False)
        elif isinstance(instruction, ChangeMode):
            os.chmod(handle, int(instruction.mode, 8))
        elif isinstance(instruction, SetAcl):
            acl = ",".join(full_acl(instruction.entries, mode))
            _run_checked(run_command, [tools["setfacl"], "--set", acl, instruction.path],
                         lambda command, rc: MSG_SETFACL_FAILED.format(path=instruction.path, command=command,
                                                                       rc=rc))
        elif isinstance(instruction, SetContext):
            _set_context(instruction, record, run_command, tools)
        else:
            os.chown(handle, *_owner_ids(instruction))


@contextlib.contextmanager
def _installed_object(path: str) -> Iterator[tuple[Optional[str], int]]:
    """The object at ``path``, a final symlink not followed: a name for it (``/proc/self/fd/<n>`` of an O_PATH
    descriptor, which chmod and chown reach the object itself through) and its mode; no name for a symlink."""
    descriptor = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        mode = os.fstat(descriptor).st_mode
        yield (None if stat.S_ISLNK(mode) else "/proc/self/fd/{}".format(descriptor)), mode
    finally:
        os.close(descriptor)


def _owner_ids(instruction: ChangeOwner) -> tuple[int, int]:
    uid = user_id(instruction.owner) if instruction.owner is not None else None
    gid = group_id(instruction.group) if instruction.group is not None else None
    return (-1 if uid is None else uid), (-1 if gid is None else gid)


def _set_context(instruction: SetContext, record: Callable[[str], None], run_command: RunCommand,
                 tools: Mapping[str, str]) -> None:
    real = os.path.realpath(instruction.path)
    arguments = ["-s", instruction.user] if instruction.user else []
    arguments += ["-t", instruction.selinux_type]
    arguments += ["-r", instruction.selinux_range] if instruction.selinux_range else []

    def failed(command: str, rc: int) -> str:
        return MSG_CONTEXT_FAILED.format(command=command, rc=rc)

    _run_checked(run_command, [tools["semanage"], "fcontext", "-a"] + arguments + [real], failed)
    _run_checked(run_command, [tools["restorecon"], "-v", real], failed)
    record(CleanupEntry(real, selinux_context=True).line())


def _run_checked(run_command: RunCommand, argv: list[str], message: Callable[[str, int], str]) -> None:
    rc, _out, err = run_command(argv)
    if rc != 0:
        shown = " ".join([os.path.basename(argv[0])] + argv[1:])
        raise InstallError(message(shown, rc) + (": " + err.strip() if err.strip() else ""))


def _copy(instruction: Copy) -> None:
    """Copy a file keeping mode, timestamps and (as root) owner; re-create a symlink with its target text.

    Written under a temporary name and renamed over the destination, so an OVERWRITE replaces the path
    itself (never writes through a symlink there) and a failure leaves no half-written file.
    """
    directory = os.path.dirname(instruction.destination)
    if instruction.link_text is not None:
        if not instruction.replaces:
            os.symlink(instruction.link_text, instruction.destination)
            return
        temporary = os.path.join(directory, TEMPORARY_PREFIX + os.path.basename(instruction.destination))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        os.symlink(instruction.link_text, temporary)
        os.replace(temporary, instruction.destination)
        return
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=TEMPORARY_PREFIX)
    os.close(handle)
    try:
        shutil.copyfile(instruction.source, temporary)
        if os.geteuid() == 0:
            source_stat = os.stat(instruction.source)
            os.chown(temporary, source_stat.st_uid, source_stat.st_gid)
        shutil.copystat(instruction.source, temporary)  # after chown, which clears setuid and setgid
        os.replace(temporary, instruction.destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


# The whole Install event, for the revision_install and instance_lifecycle modules

def read_cleanup_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as cleanup_file:
            return cleanup_file.read()
    except FileNotFoundError:
        return ""


def prepare_install(layout: DeploymentRoot, deployment_id: str, appspec: Optional[Mapping[str, Any]],
                    appspec_filename: str, file_exists_behavior: str) -> InstallPlan:
    """Read the host and plan the whole Install; raises InstallError (or AppSpecError) before anything changes."""
    archive_dir = layout.archive_dir(deployment_id)
    if not os.path.isdir(archive_dir):
        raise InstallError(f"There is no unpacked revision at {archive_dir}. Run the DownloadBundle step "
                           f"(fleetops.codedeploy.revision_bundle) for deployment {deployment_id} first.")
    appspec = load_appspec(appspec, archive_dir, appspec_filename)
    cleanup = parse_cleanup(read_cleanup_file(layout.cleanup_file))
    facts, layouts = gather_facts(archive_dir, appspec, cleanup)
    return plan_install(appspec, facts, cleanup, file_exists_behavior, layouts)


def install_revision(layout: DeploymentRoot, deployment_id: str, plan: InstallPlan, run_command: RunCommand,
                     result: InstallResult) -> None:
    """Apply a prepared Install while marked ongoing; ``result`` holds what was done, also when it raises."""
    with ongoing(layout, deployment_id, "Install"):
        apply_install(plan, layout, deployment_id, run_command, result)
