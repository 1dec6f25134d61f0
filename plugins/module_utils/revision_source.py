# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revisions on the controller: where a revision comes from, and the content-addressed cache it is fetched into.

A revision is S3 (``bucket``, ``key``, ``bundle_type``, optional ``version`` and ``etag``), git (``repository``
as ``owner/repo`` on GitHub, any git URL or a local repository, and ``commit_id``), an HTTP(S) URL (``url``,
optional ``sha256`` and ``bundle_type``: an artifact repository) or a local directory or archive. Whatever the
source, the result is one archive file in the cache, named by its content::

    <cache_dir>/<sha256>.<bundle_type>          the bundles, tar, tgz or zip
    <cache_dir>/index/<sha256 of identity>.json  a pinned source's identity -> the bundle it fetched
    <cache_dir>/git/<hash of the URL>/           a bare mirror per git repository

Only an identity that cannot change is indexed: an S3 object pinned by ``version`` and/or ``etag``, a git
commit, and a URL revision pinned by its ``sha256`` (indexed by the digest alone: the URL may hold a credential).
An unpinned S3 key is downloaded every time, since the object behind it may have been replaced.

A local directory is packed into a deterministic tar: members sorted by name, each file's mode and whole-second
mtime kept, owner and group normalised to root (0/0), so that the same tree gives the same sha256 whoever packs
it, and any change of content, name, mode or mtime gives another.

Nothing here runs a shell: git runs from argument lists, archives are read and written with tarfile and zipfile.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator, Mapping, Optional
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import (
    APPSPEC_FALLBACK_NAMES,
    check_appspec_size,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import AWS_ERRORS, describe_aws_error
from ansible_collections.fleetops.codedeploy.plugins.module_utils.bundle import (
    DEFAULT_MAX_UNPACKED_SIZE, SHA256_PATTERN, top_folder_holding_appspec)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.bundle_download import (
    DownloadError, stream_url, url_location)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import OperatorError

SOURCES = ("s3", "git", "url", "local")
ARCHIVE_TYPES = ("tar", "tgz", "zip")
SOURCE_KEYS = {
    "s3": (("bucket", "key", "bundle_type"), ("version", "etag")),
    "git": (("repository", "commit_id"), ("bundle_type",)),
    "url": (("url",), ("sha256", "bundle_type")),
    "local": (("path",), ("bundle_type",)),
}
ARCHIVE_EXTENSIONS = ((".tar.gz", "tgz"), (".tgz", "tgz"), (".tar", "tar"), (".zip", "zip"))
GITHUB_SHORTHAND = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")
COMMIT_ID_PATTERN = re.compile(r"[0-9a-fA-F]{4,40}")
SCP_LIKE_GIT_URL = re.compile(r"^[^/]+:")
# The revision keys that may hold a URL, and so credentials.
URL_KEYS = ("repository", "url")
# Query parameter names whose values are secrets: signed URLs (S3, CloudFront, Azure SAS, GCS), tokens, keys.
SECRET_PARAMETER = re.compile(r"(?i)signature|credential|token|secret|passw|^sig$|key|auth|^code$")
URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
CHUNK = 1024 * 1024
FILE_MODE = 0o644
DIRECTORY_MODE = 0o700

# The agent's own messages for a bad bundle type [agent deployment_specification.rb].
MSG_S3_BUNDLE_TYPE = "BundleType in S3Revision must be tar, tgz or zip"
MSG_LOCAL_BUNDLE_TYPE = "BundleType in LocalRevision must be tar, tgz, zip, or directory"
MSG_URL_BUNDLE_TYPE = "bundle_type of a url revision must be tar, tgz or zip"
# The agent's message for an ETag mismatch [agent command_executor.rb download_from_s3].
MSG_ETAG_MISMATCH = "Expected deployment artifact bundle etag {expected} but was actually {actual}"


class RevisionError(OperatorError):
    """A revision that cannot be fetched; the message is one line naming the revision and the fix."""


# ---------------------------------------------------------------------------------------------------------------
# The revision spec


def parse_revision(raw: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """Validate a revision dict (the role input ``codedeploy_revision``) and return it normalised.

    s3 -> ``{source, bucket, key, bundle_type, version, etag}``; git -> ``{source, repository, url, commit_id,
    bundle_type: tar}``; local -> ``{source, path (absolute), bundle_type (None when to be found out)}``.
    """
    if not isinstance(raw, Mapping) or not raw.get("source"):
        raise RevisionError("revision needs a source: s3, git, url or local, e.g. {source: s3, bucket: ..., key: ..., "
                            "bundle_type: zip}")
    source = str(raw["source"]).lower()
    if source not in SOURCES:
        raise RevisionError(f"revision source {raw['source']!r} is unknown: use s3, git, url or local")
    required, optional = SOURCE_KEYS[source]
    given = {name: value for name, value in raw.items() if name != "source" and value not in (None, "")}
    unknown = sorted(set(given) - set(required) - set(optional))
    if unknown:
        raise RevisionError(f"revision key(s) {', '.join(unknown)} do not apply to source {source}: it takes "
                            f"{', '.join(required + optional)}")
    missing = [name for name in required if name not in given]
    if missing:
        raise RevisionError(f"revision source {source} needs {', '.join(required)}; missing: {', '.join(missing)}")
    text = {name: str(value) for name, value in given.items()}
    if source == "s3":
        return dict(source="s3", bucket=text["bucket"], key=text["key"],
                    bundle_type=_bundle_type(text["bundle_type"], ARCHIVE_TYPES, MSG_S3_BUNDLE_TYPE),
                    version=text.get("version"), etag=text.get("etag"))
    if source == "git":
        if text.get("bundle_type", "tar").lower() != "tar":
            raise RevisionError(f"bundle_type {text['bundle_type']!r} does not apply to a git revision: it is always "
                                "packed as tar (git archive); leave bundle_type out")
        return dict(source="git", repository=text["repository"], url=repository_url(text["repository"]),
                    commit_id=_commit_id(text["commit_id"]), bundle_type="tar")
    if source == "url":
        return _url_revision(text)
    bundle_type = text.get("bundle_type")
    return dict(source="local", path=os.path.abspath(os.path.expanduser(text["path"])),
                bundle_type=_bundle_type(bundle_type, ARCHIVE_TYPES + ("directory",), MSG_LOCAL_BUNDLE_TYPE)
                if bundle_type else None)


def _url_revision(text: Mapping[str, str]) -> dict[str, Any]:
    location = url_location(text["url"])
    if urlsplit(text["url"]).scheme not in ("http", "https"):
        raise RevisionError(f"url {location!r} is not an http:// or https:// URL")
    sha256 = text.get("sha256")
    if sha256 and not SHA256_PATTERN.match(sha256):
        raise RevisionError(f"sha256 {sha256!r} of url revision {location} is not a SHA-256 digest: give 64 "
                            "hexadecimal digits, or leave it out to take the digest of what the URL serves")
    bundle_type = text.get("bundle_type") or bundle_type_from_name(urlsplit(text["url"]).path)
    if bundle_type is None:
        raise RevisionError(f"url revision {location}: cannot tell the bundle type from the URL's path; set "
                            "bundle_type to tar, tgz or zip")
    return dict(source="url", url=text["url"], sha256=sha256.lower() if sha256 else None,
                bundle_type=_bundle_type(bundle_type, ARCHIVE_TYPES, MSG_URL_BUNDLE_TYPE))


def _bundle_type(value: str, allowed: tuple[str, ...], message: str) -> str:
    if value.lower() not in allowed:
        raise RevisionError(f"{message}, not {value!r}")
    return value.lower()


def _commit_id(value: str) -> str:
    if not COMMIT_ID_PATTERN.fullmatch(value):
        raise RevisionError(f"commit_id {value!r} is not a commit SHA-1: give 4 to 40 hexadecimal digits (a branch "
                            "or tag name is not a revision: it can move)")
    return value.lower()


def repository_url(repository: str) -> str:
    """What git fetches from: ``owner/repo`` is GitHub; URLs and ``host:path`` as given; other paths absolute.

    A relative local path that looks like ``owner/repo`` must be written ``./owner/repo``.
    """
    if repository.startswith("-"):
        raise RevisionError(f"repository {repository!r} is not a repository: it cannot start with '-'")
    if GITHUB_SHORTHAND.fullmatch(repository):
        suffix = "" if repository.endswith(".git") else ".git"
        return f"https://github.com/{repository}{suffix}"
    if "://" in repository or SCP_LIKE_GIT_URL.match(repository):
        return repository
    return os.path.abspath(os.path.expanduser(repository))


def redact_url(url: str) -> str:
    """A URL fit to be shown or recorded: its user name and password (``***@``) and the values of query parameters
    that carry secrets (presigned S3 ``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``, and any
    ``token``, ``sig``, ``signature``, ``secret``, ``password`` or key) replaced by ``***``. Anything that is not a
    URL (a local path, ``host:path``) is returned as given."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        # Not parseable, so not known to be free of secrets: keep the scheme only.
        return url.split("://", 1)[0] + "://***"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=netloc, query=_redact_parameters(parts.query),
                                     fragment=_redact_parameters(parts.fragment)))


def redact_urls(text: str) -> str:
    """``text`` (a message, a command's error) with each URL in it redacted as :func:`redact_url` does."""
    return URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def _redact_parameters(query: str) -> str:
    parameters = []
    for parameter in query.split("&") if query else []:
        name, separator, value = parameter.partition("=")
        parameters.append(f"{name}=***" if separator and value and SECRET_PARAMETER.search(name) else parameter)
    return "&".join(parameters)


def display_revision(revision: Mapping[str, Any]) -> dict[str, Any]:
    """The revision as it is recorded and shown (ledger, hosts, cache index, task results, report): every URL in
    it redacted. The credentials stay only in the revision given, which is what fetching uses."""
    return {name: redact_url(value) if name in URL_KEYS and isinstance(value, str) else value
            for name, value in revision.items()}


def bundle_type_from_name(path: str) -> Optional[str]:
    """tar, tgz or zip from an archive's file name (``.tar``, ``.tgz``, ``.tar.gz``, ``.zip``), else None."""
    lower = path.lower()
    return next((bundle_type for extension, bundle_type in ARCHIVE_EXTENSIONS if lower.endswith(extension)), None)


def normalise_etag(etag: str) -> str:
    """An ETag compared the agent's way, quotes ignored (and case, which S3 never varies)."""
    return etag.replace('"', "").lower()


def etags_match(expected: str, actual: str) -> bool:
    return normalise_etag(expected) == normalise_etag(actual)


def source_identity(revision: Mapping[str, Any]) -> Optional[str]:
    """A stable text for a source that always yields the same bundle, or None when it may change.

    git must have its ``commit_id`` resolved to the full SHA first: an abbreviation can become ambiguous.
    """
    if revision["source"] == "s3" and (revision.get("version") or revision.get("etag")):
        etag = normalise_etag(revision["etag"]) if revision.get("etag") else None
        return json.dumps(["s3", revision["bucket"], revision["key"], revision["bundle_type"], revision.get("version"),
                           etag])
    if revision["source"] == "git" and len(revision["commit_id"]) == 40:
        # The commit names the content; the URL is shown as recorded, so that no credential reaches the index.
        return json.dumps(["git", redact_url(revision["url"]), revision["commit_id"]])
    if revision["source"] == "url" and revision.get("sha256"):
        return json.dumps(["sha256", revision["sha256"], revision["bundle_type"]])
    return None


def bundle_env(revision: Mapping[str, Any], object_etag: Optional[str] = None) -> dict[str, Optional[str]]:
    """The BUNDLE_* variables hooks get for this revision (docs/codedeploy-agent.md, 3.2).

    S3: BUNDLE_VERSION is the given version, null when none was given (the agent then leaves it unset);
    BUNDLE_ETAG is the object's ETag without quotes, so that it is set even when no ``etag`` pinned the
    revision (as the agent 2.x does). git: BUNDLE_COMMIT, the full SHA. local: none.
    """
    if revision["source"] == "s3":
        etag = object_etag or revision.get("etag")
        return dict(BUNDLE_BUCKET=revision["bucket"], BUNDLE_KEY=revision["key"], BUNDLE_VERSION=revision.get("version"),
                    BUNDLE_ETAG=etag.replace('"', "") if etag else None)
    if revision["source"] == "git":
        return dict(BUNDLE_COMMIT=revision["commit_id"])
    return {}


# ---------------------------------------------------------------------------------------------------------------
# Files: digests, the deterministic tar, the AppSpec inside a bundle


def sha256_of_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pack_directory(root: str, destination: str) -> None:
    """Write ``root``'s contents to ``destination`` as a tar that depends only on the tree.

    Members are sorted by name; directories, regular files and symlinks keep their mode and whole-second mtime;
    owner and group become root (0/0, named root) whoever packs; hard links are stored as files. Anything else
    (FIFOs, sockets, devices) is refused: it cannot be part of a revision.
    """
    if not os.path.isdir(root):
        raise RevisionError(f"local revision path {root} is not a directory")
    with tarfile.open(destination, "w", format=tarfile.PAX_FORMAT) as archive:
        for relative, status in walk_sorted(root):
            info = tarfile.TarInfo(relative)
            info.mode = stat.S_IMODE(status.st_mode)
            info.mtime = int(status.st_mtime)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            path = os.path.join(root, relative)
            if stat.S_ISDIR(status.st_mode):
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif stat.S_ISLNK(status.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                archive.addfile(info)
            elif stat.S_ISREG(status.st_mode):
                info.size = status.st_size
                with open(path, "rb") as handle:
                    archive.addfile(info, handle)
            else:
                raise RevisionError(f"local revision {root}: {relative} is not a file, directory or symlink; "
                                    "remove it from the revision")


def walk_sorted(root: str) -> list[tuple[str, os.stat_result]]:
    """(relative path, lstat) of everything under ``root``, sorted by path (so parents come before their
    children), never following links."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            entries.append((os.path.relpath(path, root), os.lstat(path)))
    return sorted(entries, key=lambda entry: entry[0])


@dataclass(frozen=True)
class ArchiveEntry:
    name: str
    is_dir: bool


def archive_entries(path: str, bundle_type: str, label: Optional[str] = None) -> list[ArchiveEntry]:
    """The member names of a bundle (leading ``./`` removed) and whether each is a directory.

    ``label`` names the bundle in the error for one that is not an archive of its type (default: its path).
    """
    try:
        if bundle_type == "zip":
            with zipfile.ZipFile(path) as archive:
                return [ArchiveEntry(_clean_name(info.filename), info.is_dir()) for info in archive.infolist()]
        with tarfile.open(path, "r:*") as archive:
            return [ArchiveEntry(_clean_name(info.name), info.isdir()) for info in archive.getmembers()]
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise RevisionError(f"{label or path} is not a readable {bundle_type} archive ({error}): check bundle_type"
                            ) from None


def _clean_name(name: str) -> str:
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def stripped_top_folder(entries: list[ArchiveEntry]) -> Optional[str]:
    """The folder the agent strips after unpacking this bundle, or None (the same rule DownloadBundle applies)."""
    return top_folder_holding_appspec((entry.name, entry.is_dir) for entry in entries if entry.name)


def read_appspec(path: str, bundle_type: str, appspec_filename: str = "appspec.yml"
                 ) -> tuple[Optional[str], Optional[str]]:
    """(text, name) of the AppSpec in a bundle as the host will find it; (None, None) when there is none.

    Looks where Install does: ``appspec_filename``, then appspec.yaml, then appspec.yml, at the bundle root
    after the agent's top-folder stripping. A file larger than hosts accept is refused (AppSpecError) unread.
    """
    top = stripped_top_folder(archive_entries(path, bundle_type))
    prefix = f"{top}/" if top else ""
    for name in (appspec_filename,) + APPSPEC_FALLBACK_NAMES:
        data = _archive_appspec(path, bundle_type, prefix + _clean_name(name))
        if data is not None:
            try:
                return data.decode("utf-8"), name
            except UnicodeDecodeError as error:
                raise RevisionError(f"the AppSpec file {prefix}{name} in {path} is not UTF-8 text ({error})") from None
    return None, None


def _archive_appspec(path: str, bundle_type: str, member: str) -> Optional[bytes]:
    """The content of the regular file ``member`` of a bundle (in any of its spellings), or None.

    Its size is checked from the archive's header before it is read (zipfile and tarfile read no more).
    """
    label = f"{member} in {path}"
    if bundle_type == "zip":
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if _clean_name(info.filename) == member and not info.is_dir():
                    check_appspec_size(info.file_size, label)
                    return archive.read(info)
        return None
    with tarfile.open(path, "r:*") as archive:
        for info in archive:
            if _clean_name(info.name) == member and info.isfile():
                check_appspec_size(info.size, label)
                handle = archive.extractfile(info)
                return handle.read() if handle else None
    return None


# ---------------------------------------------------------------------------------------------------------------
# The cache


@dataclass(frozen=True)
class Cache:
    """Paths of the content-addressed cache; see the module docstring."""

    root: str

    def bundle_path(self, sha256: str, bundle_type: str) -> str:
        return os.path.join(self.root, f"{sha256}.{bundle_type}")

    def index_path(self, identity: str) -> str:
        return os.path.join(self.root, "index", hashlib.sha256(identity.encode("utf-8")).hexdigest() + ".json")

    def git_mirror(self, url: str) -> str:
        return os.path.join(self.root, "git", hashlib.sha256(url.encode("utf-8")).hexdigest()[:16])


def cached_entry(cache: Cache, identity: Optional[str]) -> Optional[dict[str, Any]]:
    """The index entry of ``identity`` if its bundle is still in the cache with the recorded sha256."""
    if identity is None:
        return None
    try:
        with open(cache.index_path(identity), encoding="utf-8") as handle:
            entry = json.load(handle)
        if holds(cache.bundle_path(entry["sha256"], entry["bundle_type"]), entry["sha256"]):
            return entry
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def make_private_dir(path: str) -> None:
    os.makedirs(path, mode=DIRECTORY_MODE, exist_ok=True)


def holds(path: str, sha256: str) -> bool:
    """True when the cache file ``path`` is there with the content its name promises."""
    try:
        return sha256_of_file(path) == sha256
    except OSError:
        return False


def publish(temporary: str, destination: str) -> None:
    """Move a finished file into place, atomically: readers see the old file or the whole new one."""
    os.chmod(temporary, FILE_MODE)
    os.replace(temporary, destination)


def write_index(cache: Cache, identity: str, entry: Mapping[str, Any]) -> None:
    path = cache.index_path(identity)
    make_private_dir(os.path.dirname(path))
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(dict(entry, identity=identity), handle, sort_keys=True)
    os.replace(temporary, path)


# ---------------------------------------------------------------------------------------------------------------
# S3


@dataclass(frozen=True)
class S3Object:
    etag: str
    version_id: Optional[str]


def s3_location(revision: Mapping[str, Any]) -> str:
    version = f" version {revision['version']}" if revision.get("version") else ""
    return f"s3://{revision['bucket']}/{revision['key']}{version}"


def download_s3_object(client: Any, revision: Mapping[str, Any], destination: BinaryIO) -> S3Object:
    """Stream the object into ``destination``, refusing it before the body is read if its ETag is not ``etag``."""
    request = dict(Bucket=revision["bucket"], Key=revision["key"])
    if revision.get("version"):
        request["VersionId"] = revision["version"]
    try:
        response = client.get_object(**request)
        body = response["Body"]
        with contextlib.closing(body):
            etag = response.get("ETag", "")
            if revision.get("etag") and not etags_match(revision["etag"], etag):
                raise RevisionError(MSG_ETAG_MISMATCH.format(expected=revision["etag"], actual=etag)
                                    + f" ({s3_location(revision)}): the object changed, or the etag is wrong")
            for chunk in iter(lambda: body.read(CHUNK), b""):
                destination.write(chunk)
    except AWS_ERRORS as error:
        raise RevisionError(describe_aws_error(error, f"S3 GetObject {s3_location(revision)}")) from None
    return S3Object(etag, response.get("VersionId"))


# ---------------------------------------------------------------------------------------------------------------
# git


# No credential prompt ever (a task would hang); C messages, which resolve_commit reads.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
# ext:: URLs run commands; git refuses them by default, and a revision must never turn that on.
GIT_OPTIONS = ("-c", "protocol.ext.allow=never")

# AnsibleModule.run_command's shape: (argv, cwd=..., environ_update=...) -> (rc, stdout, stderr).
RunCommand = Callable[..., tuple[int, str, str]]


@dataclass(frozen=True)
class Git:
    """git run from argument lists (never a shell) through the module's ``run_command``."""

    executable: Optional[str]
    run_command: RunCommand

    def __call__(self, args: list[str], cwd: Optional[str] = None) -> tuple[int, str, str]:
        if not self.executable:
            raise RevisionError("git is required on the controller for git revisions: install git")
        return self.run_command([self.executable, *GIT_OPTIONS, *args], cwd=cwd, environ_update=GIT_ENV)


def _git_failure(rc: int, stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {rc}"


def resolve_commit(git: Git, mirror: str, commit_id: str, repository: str) -> Optional[str]:
    """The full SHA of ``commit_id`` in the mirror, or None when the mirror does not hold it (yet)."""
    rc, out, err = git(["rev-parse", "--verify", f"{commit_id}^{{commit}}"], cwd=mirror)
    if rc == 0:
        full = out.strip()
        # git prefers a branch or tag named like an abbreviation to the commit: anyone who can push could
        # then choose what is deployed.
        if not full.startswith(commit_id):
            raise RevisionError(f"commit_id {commit_id} of {redact_url(repository)} names a branch, a tag or a tag "
                                "object, not a commit: give the commit's full 40-digit SHA")
        return full
    if "ambiguous" in err:
        raise RevisionError(f"commit {commit_id} is ambiguous in {redact_url(repository)}: give more digits of the "
                            "commit SHA")
    return None


def has_mirror(mirror: str) -> bool:
    return os.path.isdir(os.path.join(mirror, "objects"))


def init_mirror(git: Git, mirror: str) -> None:
    if not has_mirror(mirror):
        make_private_dir(mirror)
        rc, _out, err = git(["init", "--quiet", "--bare", mirror], cwd=mirror)
        if rc != 0:
            raise RevisionError(f"cannot create the git cache {mirror}: {_git_failure(rc, err)}")


def fetch_commit(git: Git, mirror: str, url: str, commit_id: str, repository: str) -> str:
    """Make sure the mirror holds ``commit_id`` and return its full SHA; no network when it already does.

    Fetches the repository's branches and tags; a full SHA that is on none of them is asked for by itself,
    which GitHub (and servers allowing any reachable SHA) answer.
    """
    init_mirror(git, mirror)
    full = resolve_commit(git, mirror, commit_id, repository)
    if full:
        return full
    rc, _out, err = git(["fetch", "--quiet", "--force", "--prune", "--", url, "+refs/heads/*:refs/heads/*",
                         "+refs/tags/*:refs/tags/*"], cwd=mirror)
    if rc != 0:
        raise RevisionError(f"git fetch from {redact_url(repository)} failed: {redact_urls(_git_failure(rc, err))}")
    full = resolve_commit(git, mirror, commit_id, repository)
    if not full and len(commit_id) == 40:
        git(["fetch", "--quiet", "--", url, commit_id], cwd=mirror)
        full = resolve_commit(git, mirror, commit_id, repository)
    if not full:
        raise RevisionError(f"commit {commit_id} not found in {redact_url(repository)}")
    return full


def archive_commit(git: Git, mirror: str, commit: str, destination: str) -> None:
    """The commit's tree as a tar (``git archive``: members at the root, mtime the commit time, owner root)."""
    rc, _out, err = git(["archive", "--format=tar", f"--output={destination}", commit], cwd=mirror)
    if rc != 0:
        raise RevisionError(f"git archive of commit {commit} failed: {_git_failure(rc, err)}")


# ---------------------------------------------------------------------------------------------------------------
# Fetching: one revision into the cache


@dataclass
class Fetched:
    """A fetched revision. ``path`` is its place in the cache; ``readable`` is where the bundle is now (the same
    file, or a scratch copy in check mode, gone with the scratch directory)."""

    revision: dict[str, Any]
    sha256: str
    bundle_type: str
    path: str
    readable: str
    cached: bool
    written: bool
    s3_object: Optional[S3Object] = None


@contextlib.contextmanager
def scratch_dir(cache: Cache, check_mode: bool) -> Iterator[str]:
    """A temporary directory, removed afterwards with whatever is left in it: inside the cache, so that a
    finished bundle is renamed into place; in check mode outside it, so that the cache is not touched."""
    if not check_mode:
        make_private_dir(cache.root)
    directory = tempfile.mkdtemp(prefix=".fetch-", dir=None if check_mode else cache.root)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def describe_revision(revision: Mapping[str, Any]) -> str:
    if revision["source"] == "s3":
        return s3_location(revision)
    if revision["source"] == "git":
        return f"commit {revision['commit_id']} of {redact_url(revision['repository'])}"
    if revision["source"] == "url":
        return f"url revision {url_location(revision['url'])}"
    return f"local revision {revision['path']}"


def fetch_revision(revision: dict[str, Any], cache: Cache, scratch: str, check_mode: bool,
                   open_s3: Callable[[], Any], git: Git) -> Fetched:
    """Fetch ``revision`` (from :func:`parse_revision`) into the cache; in check mode into ``scratch`` only.

    A pinned source found in the index is not fetched again. ``open_s3`` makes the S3 client when one is needed;
    ``git`` runs git for git revisions.
    """
    mirror = None
    if revision["source"] == "git":
        mirror = _git_mirror_for(git, revision, cache, scratch, check_mode)
        revision = dict(revision, commit_id=fetch_commit(git, mirror, revision["url"], revision["commit_id"],
                                                         revision["repository"]))
    identity = source_identity(revision)
    entry = cached_entry(cache, identity)
    if entry is not None:
        path = cache.bundle_path(entry["sha256"], entry["bundle_type"])
        s3_object = S3Object(entry["etag"], entry.get("version_id")) if revision["source"] == "s3" else None
        return Fetched(revision, entry["sha256"], entry["bundle_type"], path, path, True, False, s3_object)

    temporary = os.path.join(scratch, "bundle")
    s3_object = None
    if revision["source"] == "s3":
        with open(temporary, "wb") as handle:
            s3_object = download_s3_object(open_s3(), revision, handle)
        bundle_type = revision["bundle_type"]
    elif mirror is not None:
        archive_commit(git, mirror, revision["commit_id"], temporary)
        bundle_type = "tar"
    elif revision["source"] == "url":
        download_url_revision(revision, temporary)
        bundle_type = revision["bundle_type"]
    else:
        bundle_type = _copy_local(revision, temporary)
        revision = dict(revision, bundle_type="directory" if os.path.isdir(revision["path"]) else bundle_type)
    # Refuse what is not an archive of its type before it is cached.
    archive_entries(temporary, bundle_type, describe_revision(revision))
    sha256 = sha256_of_file(temporary)
    path = cache.bundle_path(sha256, bundle_type)
    present = holds(path, sha256)
    # A local source is "fetched" by packing or copying it: finding its bundle in the cache is reusing it.
    cached = present and revision["source"] == "local"
    if check_mode:
        return Fetched(revision, sha256, bundle_type, path, path if present else temporary, cached, not present,
                       s3_object)
    if not present:
        publish(temporary, path)
    if identity is not None:
        write_index(cache, identity, dict(sha256=sha256, bundle_type=bundle_type,
                                          etag=s3_object.etag if s3_object else None,
                                          version_id=s3_object.version_id if s3_object else None))
    return Fetched(revision, sha256, bundle_type, path, path, cached, not present, s3_object)


def download_url_revision(revision: Mapping[str, Any], temporary: str) -> None:
    """Download a url revision once (the hosts' limits and retries), refusing it when it is not its ``sha256``."""
    try:
        with open(temporary, "wb") as handle:
            _size, sha256 = stream_url(revision["url"], handle, DEFAULT_MAX_UNPACKED_SIZE)
    except DownloadError as error:
        raise RevisionError(f"{describe_revision(revision)}: {error.message}") from None
    if revision.get("sha256") and sha256 != revision["sha256"]:
        raise RevisionError(f"{describe_revision(revision)} serves a bundle of sha256 {sha256}, not the "
                            f"{revision['sha256']} the revision gives: fix sha256, or the URL")


def _copy_local(revision: Mapping[str, Any], temporary: str) -> str:
    """Pack a local directory, or copy a local archive, to ``temporary``; return its bundle type."""
    path = revision["path"]
    if os.path.isdir(path):
        if revision["bundle_type"] not in (None, "directory"):
            raise RevisionError(f"local revision {path} is a directory: leave bundle_type out or set it to directory")
        pack_directory(path, temporary)
        return "tar"
    if not os.path.isfile(path):
        raise RevisionError(f"local revision path {path} does not exist: give a directory or a tar, tgz or zip file")
    if revision["bundle_type"] == "directory":
        raise RevisionError(f"local revision {path} is a file, not a directory: set bundle_type to tar, tgz or zip, "
                            "or leave it out")
    bundle_type = revision["bundle_type"] or bundle_type_from_name(path)
    if bundle_type is None:
        raise RevisionError(f"local revision {path}: cannot tell the bundle type from the file name; name it .tar, "
                            ".tgz, .tar.gz or .zip, or set bundle_type to tar, tgz or zip")
    shutil.copyfile(path, temporary)
    return bundle_type


def _git_mirror_for(git: Git, revision: Mapping[str, Any], cache: Cache, scratch: str, check_mode: bool) -> str:
    """The cached mirror of the repository; in check mode a scratch one, unless the cached one holds the commit."""
    mirror = cache.git_mirror(revision["url"])
    if not check_mode:
        return mirror
    if has_mirror(mirror) and resolve_commit(git, mirror, revision["commit_id"], revision["repository"]):
        return mirror
    return os.path.join(scratch, "git")
