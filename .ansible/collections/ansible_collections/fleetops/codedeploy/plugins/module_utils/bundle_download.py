# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bundle downloaded over HTTP(S) by the host itself (``codedeploy_bundle_transport: pull``), with Ansible's own
``open_url`` (shipped with the module: hosts need nothing else).

The URL is an S3 presigned URL the controller made for the object it validated, or an HTTP(S) revision's URL (an
artifact repository). Either way the host keeps only what the controller validated:

- the body streams to a file of its own name next to the destination (never the whole bundle in memory), hashed
  as it arrives, and replaces the destination only when its sha256 is the expected one;
- it may not pass ``max_bytes`` (checked against ``Content-Length`` before the body is read, then as it arrives);
- 5xx answers, refused or reset connections and cut bodies are tried again, a bounded number of times with a
  growing pause; a 4xx answer is final, and its message is the server's (S3's ``Code`` and ``Message``).

A URL may be a credential (a presigned URL's signature, a token in the query, a user and password): messages name
it by :func:`url_location` only, and nothing here returns it.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import socket
import time
import urllib.error
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote, urlsplit, urlunsplit

from ansible.module_utils.urls import open_url

from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import replacing
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import OperatorError

CHUNK = 1024 * 1024
DEFAULT_ATTEMPTS = 4
DEFAULT_FIRST_PAUSE = 1.0
DEFAULT_TIMEOUT = 60.0
# The part of an error body read for its message (S3's error documents are a few hundred bytes).
ERROR_BODY_LIMIT = 64 * 1024
S3_ERROR_FIELD = re.compile(r"<(Code|Message)>([^<]*)</\1>")
USER_AGENT = "fleetops-codedeploy-bundle-download"
REFUSAL_FIXES = {
    403: (". The URL was refused: a presigned URL must be used before it expires, by credentials allowed "
          "s3:GetObject on the object, through an endpoint whose policy lets the hosts use it "
          "(codedeploy_bundle_pull_endpoint_url); a repository URL needs its credentials"),
    404: ". The object or file is not there any more: deploy a revision that exists",
}


class DownloadError(OperatorError):
    """A download that did not give the expected bundle; nothing was kept."""


class RetryableDownloadError(DownloadError):
    """A failure another attempt may not see: a 5xx answer, a refused or reset connection, a cut body."""


@dataclass(frozen=True)
class Downloaded:
    """What was stored: its size and sha256 (the expected one)."""

    bytes: int
    sha256: str


def url_location(url: str) -> str:
    """The URL fit for a message: scheme, host, port and path; no user, password, query (a presigned URL's
    signature) or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def check_url(url: str) -> None:
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise DownloadError(f"bundle URL {url_location(url)!r} is not an http:// or https:// URL with a host")


def request_for(url: str) -> tuple[str, dict[str, str]]:
    """The URL to GET and its headers: a user and password in ``url`` become a Basic ``Authorization`` header (not
    sent in the URL)."""
    parts = urlsplit(url)
    headers = {}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode("utf-8")
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
        host = parts.hostname or ""
        url = urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))
    return url, headers


def server_reason(status: int, reason: str, body: bytes) -> str:
    """``HTTP 403 AccessDenied: Request has expired`` from S3's error document, else ``HTTP 404 Not Found``."""
    fields = dict(S3_ERROR_FIELD.findall(body.decode("utf-8", "replace")))
    if fields.get("Code"):
        message = f": {fields['Message']}" if fields.get("Message") else ""
        return f"HTTP {status} {fields['Code']}{message}"
    return f"HTTP {status} {reason}".rstrip()


def backoff_pauses(attempts: int, first_pause: float) -> list[float]:
    """The pauses between ``attempts`` tries: ``first_pause``, then doubled each time."""
    return [first_pause * 2 ** index for index in range(max(attempts - 1, 0))]


def _fetch_once(url: str, handle, max_bytes: int, timeout: float) -> tuple[int, str]:
    """One GET into ``handle`` (emptied first); return (bytes, sha256)."""
    handle.seek(0)
    handle.truncate()
    location = url_location(url)
    try:
        target, headers = request_for(url)
        with open_url(target, headers=headers, method="GET", timeout=timeout, http_agent=USER_AGENT) as response:
            length = response.headers.get("Content-Length")
            if max_bytes and length and length.isdigit() and int(length) > max_bytes:
                raise DownloadError(f"GET {location}: the bundle is {length} bytes, more than the {max_bytes} "
                                    "allowed; nothing was installed")
            digest = hashlib.sha256()
            size = 0
            for chunk in iter(lambda: response.read(CHUNK), b""):
                size += len(chunk)
                if max_bytes and size > max_bytes:
                    raise DownloadError(f"GET {location}: the bundle passes the {max_bytes} bytes allowed; nothing "
                                        "was installed")
                digest.update(chunk)
                handle.write(chunk)
            if length and length.isdigit() and size != int(length):
                raise RetryableDownloadError(f"GET {location}: the body ended after {size} of {length} bytes")
            return size, digest.hexdigest()
    except urllib.error.HTTPError as error:
        with error:
            reason = server_reason(error.code, str(error.reason or ""), error.read(ERROR_BODY_LIMIT))
        if error.code >= 500:
            raise RetryableDownloadError(f"GET {location} failed: {reason}") from None
        raise DownloadError(f"GET {location} failed: {reason}{REFUSAL_FIXES.get(error.code, '')}") from None
    except urllib.error.URLError as error:
        raise RetryableDownloadError(f"GET {location} failed: {error.reason}") from None
    except (http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError) as error:
        raise RetryableDownloadError(f"GET {location} failed: {type(error).__name__}: {error}") from None


def download_bundle(url: str, destination: str, expected_sha256: str, max_bytes: int,
                    attempts: int = DEFAULT_ATTEMPTS, first_pause: float = DEFAULT_FIRST_PAUSE,
                    timeout: float = DEFAULT_TIMEOUT, sleep: Callable[[float], None] = time.sleep) -> Downloaded:
    """Download ``url`` to ``destination`` if and only if it is the bundle of sha256 ``expected_sha256``.

    ``max_bytes`` 0 means no limit. On any failure the destination is left as it was and no partial file remains.
    """
    expected = expected_sha256.lower()
    os.makedirs(os.path.dirname(destination), mode=0o700, exist_ok=True)
    with replacing(destination, os.path.basename(destination) + ".", ".partial") as handle:
        size, sha256 = stream_url(url, handle, max_bytes, attempts, first_pause, timeout, sleep)
        if sha256 != expected:
            raise DownloadError(
                f"The bundle downloaded from {url_location(url)} has sha256 {sha256}, not {expected}, the sha256 of "
                "the revision the controller validated: the object was replaced after validation, or the URL serves "
                "another file. Nothing was installed; deploy the revision again.")
    return Downloaded(size, sha256)


def _with_retries(fetch: Callable[[], tuple[int, str]], attempts: int, first_pause: float,
                  sleep: Callable[[float], None]) -> tuple[int, str]:
    pauses = backoff_pauses(attempts, first_pause)
    for pause in pauses:
        try:
            return fetch()
        except RetryableDownloadError:
            sleep(pause)
    try:
        return fetch()
    except RetryableDownloadError as error:
        tries = len(pauses) + 1
        raise DownloadError(f"{error.message} (tried {tries} time{'s' if tries > 1 else ''})") from None


def stream_url(url: str, handle, max_bytes: int, attempts: int = DEFAULT_ATTEMPTS,
               first_pause: float = DEFAULT_FIRST_PAUSE, timeout: float = DEFAULT_TIMEOUT,
               sleep: Callable[[float], None] = time.sleep) -> tuple[int, str]:
    """Download ``url`` into the open binary file ``handle`` with the same limits and retries; return (bytes,
    sha256). For the controller's own fetch of an HTTP(S) revision, which learns the sha256."""
    check_url(url)
    return _with_retries(lambda: _fetch_once(url, handle, max_bytes, timeout), attempts, first_pause, sleep)
