# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CodeDeploy agent's on-host layout under the deployment root, shared by the host-side modules.

Names and contents follow the agent exactly, so that a host that ran the real agent is taken over with its
history intact::

    <root>/<dg-id>/<d-id>/{bundle.tar, deployment-archive/, logs/scripts.log}
    <root>/deployment-instructions/{<dg-id>-cleanup, <dg-id>-install.json,
                                    <dg-id>_last_successful_install, <dg-id>_most_recent_install}
    <root>/deployment-logs/codedeploy-agent-deployments.log
    <root>/ongoing-deployment/<d-id>
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shlex
import tempfile
import uuid
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Optional

DEFAULT_DEPLOYMENT_ROOT = "/opt/codedeploy-agent/deployment-root"
DEPLOYMENT_ID_PATTERN = re.compile(r"^d-[A-Z0-9]{9}$")

# The options every host-side module takes; documented by the fleetops.codedeploy.deployment doc fragment.
DEPLOYMENT_ARGUMENT_SPEC = dict(
    deployment_id=dict(type="str", required=True),
    deployment_group_id=dict(type="str", required=True),
    deployment_group_name=dict(type="str", required=True),
    application_name=dict(type="str", required=True),
    deployment_root=dict(type="path", default=DEFAULT_DEPLOYMENT_ROOT),
    appspec_filename=dict(type="str", default="appspec.yml"),
)


class DeploymentRootError(Exception):
    """Bad identifiers or an unusable deployment root; the message says which and why."""


def validate_identifiers(deployment_id: str, deployment_group_id: str) -> None:
    """Refuse IDs that could not have come from a deployment, before they become path components."""
    if not DEPLOYMENT_ID_PATTERN.match(deployment_id):
        raise DeploymentRootError(
            f"deployment_id {deployment_id!r} is not a deployment ID: expected 'd-' and 9 upper-case letters or "
            "digits, e.g. d-A1B2C3D4E")
    validate_deployment_group_id(deployment_group_id)


def validate_deployment_group_id(deployment_group_id: str) -> None:
    """Refuse a deployment group ID that is not a UUID: it names files in the ledger and directories on hosts."""
    try:
        uuid.UUID(deployment_group_id)
    except (ValueError, TypeError, AttributeError):
        raise DeploymentRootError(
            f"deployment_group_id {deployment_group_id!r} is not a UUID, e.g. 4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d: "
            "set codedeploy_deployment_group_id to the group's UUID, or leave it out to derive one from the "
            "application and deployment group names") from None


@dataclass(frozen=True)
class DeploymentRoot:
    """Paths of one deployment group under one deployment root."""

    root: str
    deployment_group_id: str

    @property
    def group_dir(self) -> str:
        return os.path.join(self.root, self.deployment_group_id)

    def deployment_dir(self, deployment_id: str) -> str:
        return os.path.join(self.group_dir, deployment_id)

    def bundle_path(self, deployment_id: str) -> str:
        return os.path.join(self.deployment_dir(deployment_id), "bundle.tar")

    def archive_dir(self, deployment_id: str) -> str:
        return os.path.join(self.deployment_dir(deployment_id), "deployment-archive")

    def scripts_log(self, deployment_id: str) -> str:
        return os.path.join(self.deployment_dir(deployment_id), "logs", "scripts.log")

    @property
    def instructions_dir(self) -> str:
        return os.path.join(self.root, "deployment-instructions")

    @property
    def cleanup_file(self) -> str:
        return os.path.join(self.instructions_dir, f"{self.deployment_group_id}-cleanup")

    @property
    def install_json(self) -> str:
        return os.path.join(self.instructions_dir, f"{self.deployment_group_id}-install.json")

    @property
    def last_successful_file(self) -> str:
        return os.path.join(self.instructions_dir, f"{self.deployment_group_id}_last_successful_install")

    @property
    def most_recent_file(self) -> str:
        return os.path.join(self.instructions_dir, f"{self.deployment_group_id}_most_recent_install")

    @property
    def deployments_log(self) -> str:
        return os.path.join(self.root, "deployment-logs", "codedeploy-agent-deployments.log")

    def ongoing_file(self, deployment_id: str) -> str:
        return os.path.join(self.root, "ongoing-deployment", deployment_id)

    def last_successful_dir(self) -> Optional[str]:
        """The deployment directory of the last install that completed, or None on a first deployment."""
        return read_pointer(self.last_successful_file)

    def most_recent_dir(self) -> Optional[str]:
        return read_pointer(self.most_recent_file)


def read_pointer(path: str) -> Optional[str]:
    """Read a `_last_successful_install`-style file: an absolute directory path, no newline."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = handle.read().strip()
    except FileNotFoundError:
        return None
    return content or None


# The cleanup file holds one path a line, read back with surrounding whitespace stripped, as the agent reads it. A
# path that a line cannot hold as it is (a control character, a backslash, a space at either end) is written with
# escapes: "\\" for a backslash, "\xNN" for the others. Ordinary paths are written unchanged, so that the agent can
# still undo an install this collection made; an escaped path is, for the agent, a name that does not exist in the
# same directory, and for this collection exactly the path that was installed. Escapes only ever stand for those
# characters ("\x2f" stays as it is): a line read back never gains a "/" or a "..", and so never names a path in
# another directory — a newline in a name can no longer turn one line into two paths.
CLEANUP_ESCAPED = re.compile(r"[\x00-\x1f\x7f-\x9f\\]|\A | \Z")
CLEANUP_ESCAPE = re.compile(r"\\(\\|x(?:[01][0-9a-fA-F]|7[fF]|[89][0-9a-fA-F]|20))")


def encode_cleanup_path(path: str) -> str:
    return CLEANUP_ESCAPED.sub(lambda match: "\\\\" if match.group() == "\\" else f"\\x{ord(match.group()):02x}",
                               path)


def decode_cleanup_path(text: str) -> str:
    return CLEANUP_ESCAPE.sub(lambda match: "\\" if match.group(1) == "\\" else chr(int(match.group(1)[1:], 16)),
                              text)


@contextlib.contextmanager
def replacing(path: str, prefix: str = ".tmp-", suffix: str = "", durable: bool = False) -> Iterator[BinaryIO]:
    """Yield a new file of its own name next to ``path``; on leaving, it replaces ``path`` (mode 0644) — or, when
    an exception leaves, it is removed and ``path`` is left as it was. A crash leaves the old or the new file, never
    half of one, and two writers never share one temporary file. ``durable``: the new content is on disk before it
    replaces ``path``, and the replacement after, so that a power loss does not leave an empty file either."""
    directory = os.path.dirname(path)
    descriptor, partial = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    if durable:
        sync_directory(directory)


def sync_directory(directory: str) -> None:
    """Put ``directory``'s entries (a file renamed into it) on disk."""
    descriptor = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: str, content: str) -> None:
    """Replace ``path`` with ``content`` atomically, making its directory when needed."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with replacing(path) as handle:
        handle.write(content.encode("utf-8"))


def write_pointer(path: str, target_dir: str) -> None:
    write_atomically(path, target_dir)


def utc_timestamp(moment: Optional[datetime.datetime] = None) -> str:
    """Now (or ``moment``), ISO 8601 UTC with milliseconds: the times of records, events and locks."""
    moment = (moment or datetime.datetime.now(datetime.timezone.utc)).astimezone(datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def deployments_log_line(deployment_id: str, message: str, now: Optional[datetime.datetime] = None) -> str:
    """One line of codedeploy-agent-deployments.log: ``[YYYY-MM-DD HH:MM:SS.mmm] [<d-id>]<message>``."""
    now = now or datetime.datetime.now()
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d}"
    return f"[{stamp}] [{deployment_id}]{message}\n"


def append_deployments_log(layout: DeploymentRoot, deployment_id: str, messages: list[str]) -> None:
    os.makedirs(os.path.dirname(layout.deployments_log), exist_ok=True)
    with open(layout.deployments_log, "a", encoding="utf-8") as handle:
        for message in messages:
            handle.write(deployments_log_line(deployment_id, message))


@contextlib.contextmanager
def ongoing(layout: DeploymentRoot, deployment_id: str, command: str) -> Iterator[None]:
    """Mark a command in progress as the agent does (``ongoing-deployment/<d-id>``), and clear it after."""
    path = layout.ongoing_file(deployment_id)
    write_atomically(path, command)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


# Files of our own beside the agent's, in deployment-instructions: what this host last took part in, and the
# deployment group's last successful deployment (revision, bundle, AppSpec), so that rollback works from an
# empty controller.
def instance_deployment_file(layout: DeploymentRoot) -> str:
    return os.path.join(layout.instructions_dir, f"{layout.deployment_group_id}_last_instance_deployment.json")


def successful_deployment_file(layout: DeploymentRoot) -> str:
    return os.path.join(layout.instructions_dir, f"{layout.deployment_group_id}_last_successful_deployment.json")


def bundle_store_dir(deployment_root: str) -> str:
    """Where the controller's pushed bundles stay, named <sha256>.<bundle type>: outside the group directories
    that the agent's pruning counts, so that a host already holding a bundle is not sent it again."""
    return os.path.join(deployment_root, "fleetops-bundles")


def held_bundles(deployment_root: str) -> list[str]:
    """The complete bundles in the store (a copy still in progress is named ``*.partial``)."""
    store = bundle_store_dir(deployment_root)
    if not os.path.isdir(store):
        return []
    return sorted(name for name in os.listdir(store) if not name.endswith(".partial"))


# Where the controller pushes bundles on a host: a directory under the login user's Ansible remote_tmp (so that a
# fleet that moved remote_tmp off a root-squashed NFS home moves it too), made private by the survey before any wave
# so that a push is one file transfer with no command before it. Files a killed push left are removed after a day.
PUSH_DIR_NAME = "fleetops-codedeploy-push"
# What the push directory command prints, before the directory and its `ls -ldn` line, when it refuses one.
PUSH_DIR_REFUSED = "push directory refused:"


def prepare_push_dir_command(remote_tmp: str) -> Optional[str]:
    """A POSIX shell command making the push directory under ``remote_tmp`` and printing its absolute path; None
    when the setting is one this does not handle (``~user``, quotes), and the push goes through a temporary
    directory instead. Like Ansible's own temporary directories, the path is expanded by the shell (``$HOME``,
    ``${USER}``): it is the operator's configuration, never revision content.

    In a shared ``remote_tmp`` (``/tmp``) another user may have made the directory first, to read the bundles or
    plant links: the directory is made with its mode in one step, and used only when it is a real directory (not
    a symlink), owned by the login user, with no group or other access (no ACL either); else the command prints
    :data:`PUSH_DIR_REFUSED`, the directory and its ``ls -ldn`` line, and fails, changing nothing in it."""
    if remote_tmp == "~" or remote_tmp.startswith("~/"):
        remote_tmp = "$HOME" + remote_tmp[1:]
    if not remote_tmp or remote_tmp.startswith("~") or any(char in remote_tmp for char in '"`\\\n'):
        return None
    parent = remote_tmp.rstrip("/") or "/"
    private = ('[ ! -h "$dir" ] && [ -d "$dir" ] && cd "$dir" && [ "$(pwd -P)" = "$dir" ] '
               '&& set -- $(ls -ldn .) && [ "$3" = "$(id -u)" ] && { [ "$1" = drwx------ ] || [ "$1" = drwx------. ]; }')
    return (f'umask 077 && mkdir -p "{parent}" && cd -P "{parent}" && dir=$(pwd -P) && dir="${{dir%/}}/{PUSH_DIR_NAME}" '
            '&& { mkdir -m 700 "$dir" 2>/dev/null || :; } '
            f'&& if {private}; then {{ find . -type f -mtime +0 -exec rm -f {{}} + || :; }} && pwd -P; '
            f'else echo "{PUSH_DIR_REFUSED} $dir $(ls -ldn "$dir" 2>&1)"; exit 1; fi')


def replace_file_command(path: str, temporary_suffix: str) -> str:
    """A POSIX shell command replacing ``path`` atomically with its standard input, as write_atomically does, for
    a host reached without running a module. Only the quoted paths are in the command; the content is on stdin."""
    partial = shlex.quote(path + temporary_suffix)
    return (f"umask 022 && mkdir -p {shlex.quote(os.path.dirname(path))} && cat > {partial} "
            f"&& mv -f {partial} {shlex.quote(path)}")


def read_json_file(path: str) -> Optional[dict]:
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (FileNotFoundError, ValueError):
        return None
    return content if isinstance(content, dict) else None
