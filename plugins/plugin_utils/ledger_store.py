# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the ledger keeps its documents: a directory on the controller, or an S3 prefix shared by every controller.

Both stores offer the same four operations on small documents named by a key (``deployments/d-X.json``):
``get`` returns the bytes and a *version*, ``put`` writes conditionally — only if the key is absent
(``if_version=ABSENT``) or still at the version the writer read — and raises :class:`VersionConflict` otherwise.
No caller ever checks and then writes: the condition is part of the write.

- S3 (Amazon S3 or any store with conditional writes: MinIO, Ceph): ``PutObject`` with ``If-None-Match: *`` or
  ``If-Match: <ETag>``; a 412 (or 409, a concurrent conditional write) is a conflict.
- A directory: the check and the write happen under an exclusive ``flock`` of one lock file of the directory, and
  the new content is renamed into place, so readers see the old document or the new one, never half of one (and,
  synced to disk before and after the rename, not an empty one after a power loss).
  The version is the sha256 of the content.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from typing import Any, Iterator, Optional, Union
from urllib.parse import urlsplit

from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import (
    AWS_ERRORS, aws_client_from_options, describe_aws_error)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import replacing
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import OperatorError


class Absent:
    """The condition "the key does not exist yet" (S3's ``If-None-Match: *``)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent()
Condition = Union[None, Absent, str]  # None: unconditional; ABSENT; or the version the writer read


class LedgerStoreError(OperatorError):
    """The store cannot be read or written; the message says which document and why."""


class VersionConflict(Exception):
    """A conditional write lost: the key exists (ABSENT) or changed since it was read (version)."""


def condition_holds(current: Optional[tuple[bytes, str]], if_version: Union[Absent, str]) -> bool:
    """Whether a conditional write may replace ``current`` (the key's content and version, None when absent)."""
    if if_version is ABSENT:
        return current is None
    return current is not None and current[1] == if_version


class LocalStore:
    """Documents as files under ``directory``."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(os.path.expanduser(directory))

    def location(self, key: str = "") -> str:
        return os.path.join(self.directory, key) if key else self.directory

    def get(self, key: str) -> Optional[tuple[bytes, str]]:
        try:
            with open(self.location(key), "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise LedgerStoreError(f"Cannot read {self.location(key)}: {error.strerror}") from error
        return data, content_version(data)

    def put(self, key: str, data: bytes, if_version: Condition = None) -> str:
        path = self.location(key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with self._exclusive():
                if if_version is not None and not condition_holds(self.get(key), if_version):
                    raise VersionConflict(key)
                # On disk before the write lock is let go: a power loss leaves the old document or the new one.
                with replacing(path, durable=True) as handle:
                    handle.write(data)
        except OSError as error:  # a full or read-only disk: the document is left as it was
            raise LedgerStoreError(f"Cannot write {path}: {error.strerror or error}") from error
        return content_version(data)

    def keys(self, prefix: str) -> list[str]:
        directory = self.location(prefix)
        if not os.path.isdir(directory):
            return []
        return sorted(f"{prefix}/{name}" for name in os.listdir(directory) if not name.startswith("."))

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One writer at a time in this ledger directory, across every process of every user of it."""
        os.makedirs(self.directory, exist_ok=True)
        descriptor = os.open(os.path.join(self.directory, ".write-lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the flock


class S3Store:
    """Documents as objects under ``s3://bucket/prefix/``, reached through the ``aws`` options."""

    def __init__(self, bucket: str, prefix: str, aws: Optional[dict[str, Any]] = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._aws = aws
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws_client_from_options("s3", self._aws)
        return self._client

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def location(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}" if key else f"s3://{self.bucket}/{self.prefix}"

    def get(self, key: str) -> Optional[tuple[bytes, str]]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
            return answer["Body"].read(), answer["ETag"]
        except AWS_ERRORS as error:
            if error_code(error) in ("NoSuchKey", "404"):
                return None
            raise LedgerStoreError(describe_aws_error(error, f"S3 GetObject {self.location(key)}")) from error

    def put(self, key: str, data: bytes, if_version: Condition = None) -> str:
        condition = {} if if_version is None else (
            {"IfNoneMatch": "*"} if if_version is ABSENT else {"IfMatch": if_version})
        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data,
                                            ContentType=content_type(key), **condition)
        except AWS_ERRORS as error:
            if error_code(error) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                raise VersionConflict(key) from error
            raise LedgerStoreError(describe_aws_error(error, f"S3 PutObject {self.location(key)}")) from error
        return answer["ETag"]

    def keys(self, prefix: str) -> list[str]:
        found = []
        strip = len(self.object_key(""))
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=self.object_key(prefix) + "/"):
                found += [entry["Key"][strip:] for entry in page.get("Contents", [])]
        except AWS_ERRORS as error:
            raise LedgerStoreError(describe_aws_error(
                error, f"S3 ListObjectsV2 {self.location(prefix)}/")) from error
        return sorted(found)


Store = Union[LocalStore, S3Store]


def open_store(location: str, aws: Optional[dict[str, Any]] = None) -> Store:
    """``s3://bucket/prefix`` → :class:`S3Store`; anything else is a directory (``~`` expanded)."""
    if location.startswith("s3://"):
        parts = urlsplit(location)
        if not parts.netloc:
            raise LedgerStoreError(f"Ledger {location!r} names no bucket: write it as s3://bucket/prefix")
        return S3Store(parts.netloc, parts.path, aws)
    if "://" in location:
        raise LedgerStoreError(f"Ledger {location!r}: give a directory on the controller or s3://bucket/prefix")
    return LocalStore(location)


def content_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def error_code(error: BaseException) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode")
               or "")


def content_type(key: str) -> str:
    return {"json": "application/json", "xml": "application/xml", "html": "text/html; charset=utf-8"}.get(
        key.rsplit(".", 1)[-1], "application/octet-stream")
