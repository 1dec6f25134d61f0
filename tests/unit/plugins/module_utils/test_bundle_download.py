# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's own download of a bundle, and the url revision source, against a real local HTTP server whose answers
each test scripts (S3's error documents, 5xx, cut bodies)."""
from __future__ import annotations

import base64
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from ansible_collections.fleetops.codedeploy.plugins.module_utils.bundle_download import (
    DownloadError, backoff_pauses, download_bundle, server_reason, url_location)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.revision_source import (
    Cache, Git, RevisionError, fetch_revision, parse_revision, scratch_dir)
from support.revisions import archive_tree, write_tree

S3_EXPIRED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
              b"<Message>Request has expired</Message><X-Amz-Expires>60</X-Amz-Expires></Error>")


class Server:
    """A local HTTP server answering each GET with the next scripted answer (the last one repeats):
    ``(status, body)``, or ``("cut", body)`` for a body cut short of its Content-Length."""

    def __init__(self) -> None:
        self.answers: list[tuple] = []
        self.requests: list[dict] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server name)
                server.requests.append({"path": self.path, "authorization": self.headers.get("Authorization")})
                status, body = server.answers[min(len(server.requests), len(server.answers)) - 1]
                self.send_response(200 if status == "cut" else status)
                self.send_header("Content-Length", str(len(body) * (2 if status == "cut" else 1)))
                self.end_headers()
                self.wfile.write(body)
                if status == "cut":
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str = "/bundles/app.tar", userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.httpd.server_port}{path}"


@pytest.fixture
def server():
    running = Server()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


def no_wait(pauses: list[float]):
    return pauses.append


def test_the_bundle_is_streamed_to_its_place_with_its_size_and_credentials_from_the_url(server, tmp_path):
    body = b"bundle bytes" * 1000
    server.answers = [(200, body)]
    destination = tmp_path / "store" / "abc.tar"
    downloaded = download_bundle(server.url(userinfo="ci:s%40cret@") + "?X-Amz-Signature=f00", str(destination),
                                 hashlib.sha256(body).hexdigest(), max_bytes=len(body))
    assert (downloaded.bytes, destination.read_bytes()) == (len(body), body)
    assert oct(destination.stat().st_mode & 0o777) == "0o644"
    assert server.requests[0]["path"] == "/bundles/app.tar?X-Amz-Signature=f00"
    assert server.requests[0]["authorization"] == "Basic " + base64.b64encode(b"ci:s@cret").decode()


def test_another_bundle_is_refused_naming_both_digests_and_nothing_is_kept(server, tmp_path):
    server.answers = [(200, b"replaced after validation")]
    destination = tmp_path / "abc.tar"
    destination.write_bytes(b"what the host had")
    expected = "a" * 64
    with pytest.raises(DownloadError) as raised:
        download_bundle(server.url() + "?X-Amz-Signature=secret", str(destination), expected, 0)
    actual = hashlib.sha256(b"replaced after validation").hexdigest()
    assert f"has sha256 {actual}, not {expected}" in raised.value.message
    assert "Nothing was installed" in raised.value.message
    assert "secret" not in raised.value.message
    assert destination.read_bytes() == b"what the host had"
    assert [path.name for path in tmp_path.iterdir()] == ["abc.tar"]


def test_server_errors_and_cut_bodies_are_tried_again_with_growing_pauses(server, tmp_path):
    body = b"x" * 5000
    server.answers = [(503, b"<Error><Code>SlowDown</Code></Error>"), ("cut", body), (200, body)]
    pauses: list[float] = []
    downloaded = download_bundle(server.url(), str(tmp_path / "b.tar"), hashlib.sha256(body).hexdigest(), 0,
                                 sleep=no_wait(pauses))
    assert downloaded.bytes == len(body)
    assert (len(server.requests), pauses) == (3, [1.0, 2.0])


def test_retries_are_bounded_and_the_last_reason_is_told(server, tmp_path):
    server.answers = [(500, b"<Error><Code>InternalError</Code><Message>We encountered an internal error."
                            b"</Message></Error>")]
    pauses: list[float] = []
    with pytest.raises(DownloadError) as raised:
        download_bundle(server.url(), str(tmp_path / "b.tar"), "a" * 64, 0, sleep=no_wait(pauses))
    assert raised.value.message == (f"GET {server.url()} failed: HTTP 500 InternalError: We encountered an internal "
                                    "error. (tried 4 times)")
    assert (len(server.requests), pauses) == (4, [1.0, 2.0, 4.0])
    assert not list(tmp_path.iterdir())


def test_a_refusal_is_final_and_gives_s3s_reason(server, tmp_path):
    server.answers = [(403, S3_EXPIRED)]
    with pytest.raises(DownloadError) as raised:
        download_bundle(server.url() + "?X-Amz-Signature=secret", str(tmp_path / "b.tar"), "a" * 64, 0,
                        sleep=no_wait([]))
    assert raised.value.message.startswith(f"GET {server.url()} failed: HTTP 403 AccessDenied: Request has expired. ")
    assert "before it expires" in raised.value.message
    assert len(server.requests) == 1


def test_the_size_is_bounded_before_and_while_reading(server, tmp_path):
    server.answers = [(200, b"y" * 2048)]
    with pytest.raises(DownloadError, match="the bundle is 2048 bytes, more than the 1024 allowed"):
        download_bundle(server.url(), str(tmp_path / "b.tar"), "a" * 64, 1024)
    assert not list(tmp_path.iterdir())


def test_a_host_that_cannot_be_reached_is_tried_again_then_named(tmp_path):
    pauses: list[float] = []
    with pytest.raises(DownloadError, match=r"GET http://127.0.0.1:9/b.tar failed: .*\(tried 2 times\)"):
        download_bundle("http://127.0.0.1:9/b.tar", str(tmp_path / "b.tar"), "a" * 64, 0, attempts=2,
                        sleep=no_wait(pauses))
    assert pauses == [1.0]


def test_messages_name_a_url_without_its_credentials():
    assert url_location("https://ci:tok@repo.example.com:8443/r/app.tgz?X-Amz-Signature=abc#x") == \
        "https://repo.example.com:8443/r/app.tgz"
    assert server_reason(404, "Not Found", b"") == "HTTP 404 Not Found"
    assert backoff_pauses(4, 0.5) == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("raw, message", [
    ({"source": "url", "url": "ftp://h/app.tar"}, "url 'ftp://h/app.tar' is not an http:// or https:// URL"),
    ({"source": "url", "url": "https://u:p@h/app?token=1"},
     "url revision https://h/app: cannot tell the bundle type from the URL's path; set bundle_type"),
    ({"source": "url", "url": "https://h/app.zip", "sha256": "abc"}, "sha256 'abc' of url revision https://h/app.zip"),
])
def test_bad_url_revisions_fail_with_one_line_that_hides_credentials(raw, message):
    with pytest.raises(RevisionError) as raised:
        parse_revision(raw)
    assert raised.value.message.startswith(message)


def test_a_url_revision_is_fetched_checked_and_then_found_by_its_digest(server, tmp_path):
    tree = write_tree(tmp_path / "tree", {"appspec.yml": "version: 0.0\nos: linux\n"})
    bundle = archive_tree(tree, tmp_path / "app.tgz", "tgz")
    body = Path(bundle).read_bytes()
    sha256 = hashlib.sha256(body).hexdigest()
    server.answers = [(200, body)]
    cache = Cache(str(tmp_path / "cache"))
    git = Git(None, lambda *args, **kwargs: (1, "", ""))

    def fetch(revision):
        with scratch_dir(cache, False) as scratch:
            return fetch_revision(parse_revision(revision), cache, scratch, False, lambda: None, git)

    learnt = fetch({"source": "url", "url": server.url("/r/app.tar.gz")})
    assert (learnt.sha256, learnt.bundle_type, learnt.cached) == (sha256, "tgz", False)
    pinned = fetch({"source": "url", "url": server.url("/r/app.tar.gz"), "sha256": sha256.upper()})
    again = fetch({"source": "url", "url": server.url("/elsewhere/app.tar.gz"), "sha256": sha256})
    assert (pinned.sha256, again.cached, len(server.requests)) == (sha256, True, 2)
    with pytest.raises(RevisionError) as raised:
        fetch({"source": "url", "url": server.url("/r/app.tar.gz?token=secret"), "sha256": "b" * 64})
    assert raised.value.message == (f"url revision {server.url('/r/app.tar.gz')} serves a bundle of sha256 {sha256}, "
                                    f"not the {'b' * 64} the revision gives: fix sha256, or the URL")
