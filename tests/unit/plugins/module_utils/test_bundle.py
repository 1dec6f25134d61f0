# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DownloadBundle logic: the agent's pruning rule, member checks, the top-folder rule, digests, and unpacking."""
from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from ansible_collections.fleetops.codedeploy.plugins.module_utils import bundle
from ansible_collections.fleetops.codedeploy.plugins.module_utils.bundle import (
    DIRECTORY,
    FILE,
    HARDLINK,
    SYMLINK,
    BundleError,
    Member,
    apply_download_bundle,
    check_etag,
    normalise_member_name,
    plan_download_bundle,
    plan_pruning,
    top_folder_to_strip,
    validate_members,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import DeploymentRoot
from support.revisions import archive_tree, tar_with_members, write_tree

GROUP = "4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d"
LABEL = "bundle.tar member"
REVISION = {
    "appspec.yml": "version: 0.0\nos: linux\n",
    "scripts/start.sh": "#!/bin/sh\necho start\n",
    "web/index.html": "<h1>hello</h1>\n",
    "web/private/secret.txt": "s3cret\n",
}
REVISION_MODES = {"web/private/secret.txt": 0o600}


# --- pruning -----------------------------------------------------------------------------------------------------

def deployments(count: int) -> list[tuple[str, float]]:
    return [(f"d-{n:09d}", 1000.0 + n) for n in range(1, count + 1)]


def test_prune_keeps_max_revisions_counting_the_new_one():
    # The agent's probe: max_revisions=3, 4th deployment -> d-2, d-3 and d-4 remain.
    entries = deployments(4)
    assert plan_pruning(entries, "d-000000004", None, 3) == ["d-000000001"]


def test_prune_counts_the_new_deployment_even_before_its_directory_exists():
    assert plan_pruning(deployments(5), "d-000000006", None, 3) == ["d-000000001", "d-000000002", "d-000000003"]


def test_prune_deletes_nothing_while_under_the_limit():
    assert plan_pruning(deployments(2), "d-000000003", None, 3) == []
    assert plan_pruning([], "d-000000001", None, 1) == []


def test_prune_never_deletes_the_last_successful_one_so_one_more_remains():
    entries = deployments(5)
    assert plan_pruning(entries, "d-000000006", "d-000000001", 3) == ["d-000000002", "d-000000003", "d-000000004"]


def test_prune_orders_by_mtime_not_by_name():
    entries = [("d-AAAAAAAAA", 300.0), ("d-BBBBBBBBB", 100.0), ("d-CCCCCCCCC", 200.0)]
    assert plan_pruning(entries, "d-DDDDDDDDD", None, 2) == ["d-BBBBBBBBB", "d-CCCCCCCCC"]


def test_prune_with_max_revisions_one_keeps_only_the_new_and_the_last_successful():
    assert plan_pruning(deployments(3), "d-000000004", "d-000000002", 1) == ["d-000000001", "d-000000003"]


@pytest.mark.parametrize("value", [0, -1])
def test_prune_refuses_max_revisions_below_one(value):
    with pytest.raises(BundleError, match=rf"max_revisions must be 1 or more.*:max_revision={value}"):
        plan_pruning(deployments(2), "d-000000003", None, value)


# --- member names and links --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("appspec.yml", "appspec.yml"), ("./a/b", "a/b"), ("a//b/", "a/b"), (".", "."), ("./", "."),
    ("/etc/passwd", None), ("../etc/passwd", None), ("a/../../b", None), ("a/../b", None),
])
def test_normalise_member_name(name, expected):
    assert normalise_member_name(name) == expected


@pytest.mark.parametrize("name", ["/etc/passwd", "../etc/passwd", "web/../../x"])
def test_members_escaping_by_name_are_refused(name):
    with pytest.raises(BundleError) as error:
        validate_members([Member("appspec.yml", FILE, 3), Member(name, FILE, 3)], LABEL, 0)
    assert error.value.message == (f'bundle.tar member "{name}" escapes the bundle: member names must be relative '
                                   "paths inside it")


@pytest.mark.parametrize("name, target", [("etc", "/etc"), ("web/up", "../../x"), ("up", "..")])
def test_symlinks_pointing_out_are_refused(name, target):
    with pytest.raises(BundleError, match=rf'member "{name}" is a symlink to "{target}", outside the bundle'):
        validate_members([Member("web", DIRECTORY), Member(name, SYMLINK, link_target=target)], LABEL, 0)


def test_symlinks_inside_are_accepted():
    members = [Member("web", DIRECTORY), Member("web/index.html", FILE, 5),
               Member("current", SYMLINK, link_target="web"), Member("web/home", SYMLINK, link_target="../web/."),
               Member("web/same", SYMLINK, link_target="index.html"), Member("root", SYMLINK, link_target=".")]
    assert validate_members(members, LABEL, 0) == 5


def test_a_member_written_through_a_symlink_of_the_bundle_is_refused():
    # a/b/p -> ../.. is the root, so "a/b/p/l -> ../../x" would land outside although its text looks inside.
    members = [Member("a/b/p", SYMLINK, link_target="../.."), Member("a/b/p/l", SYMLINK, link_target="../../x")]
    with pytest.raises(BundleError, match=r'"a/b/p/l" would be written through "a/b/p", a symlink of the bundle'):
        validate_members(members, LABEL, 0)


def test_a_symlink_climbing_out_of_another_symlink_is_refused():
    # "s" is the bundle root, so "s/.." is the directory above it, although "s/../x" reads as "x".
    members = [Member("s", SYMLINK, link_target="."), Member("a", SYMLINK, link_target="s/../x")]
    with pytest.raises(BundleError, match=r'"a" is a symlink to "s/../x", which climbs out of "s", a symlink'):
        validate_members(members, LABEL, 0)
    through_without_climbing = [Member("web", DIRECTORY), Member("s", SYMLINK, link_target="web"),
                                Member("a", SYMLINK, link_target="s/index.html")]
    assert validate_members(through_without_climbing, LABEL, 0) == 0


def test_hard_links_must_name_a_file_of_the_bundle():
    ok = [Member("a.txt", FILE, 4), Member("b.txt", HARDLINK, link_target="./a.txt")]
    assert validate_members(ok, LABEL, 0) == 4
    with pytest.raises(BundleError, match=r'"evil" is a hard link to "../../etc/shadow", outside the bundle'):
        validate_members([Member("evil", HARDLINK, link_target="../../etc/shadow")], LABEL, 0)
    with pytest.raises(BundleError, match=r'"evil" is a hard link to "/etc/shadow", outside the bundle'):
        validate_members([Member("evil", HARDLINK, link_target="/etc/shadow")], LABEL, 0)
    with pytest.raises(BundleError, match=r'"evil" is a hard link to "missing", which is not a file of the bundle'):
        validate_members([Member("evil", HARDLINK, link_target="missing")], LABEL, 0)


@pytest.mark.parametrize("kind", ["a FIFO", "a character device", "a block device"])
def test_special_files_are_refused(kind):
    with pytest.raises(BundleError, match=rf'member "dev/x" is {kind}: a bundle may hold only regular files'):
        validate_members([Member("dev/x", kind)], LABEL, 0)


def test_the_unpacked_size_limit_names_the_member_that_passes_it():
    members = [Member("a", FILE, 600), Member("big.bin", FILE, 500)]
    assert validate_members(members, LABEL, 1100) == 1100
    assert validate_members(members, LABEL, 0) == 1100  # 0: no limit
    with pytest.raises(BundleError, match=r'max_unpacked_size \(1000 bytes\).*"big.bin" \(500 bytes\) passes'):
        validate_members(members, LABEL, 1000)


# --- top-level folder ---------------------------------------------------------------------------------------------

def names(*paths: str) -> list[Member]:
    return [Member(path, DIRECTORY if path.endswith("/") else FILE) for path in paths]


@pytest.mark.parametrize("members, expected", [
    (names("app/", "app/appspec.yml", "app/web/x"), "app"),
    (names("./app/AppSpec.YML", "./app/web/x"), "app"),  # implied directory, any case, ./ prefix
    (names("./", "app/appspec.yaml"), "app"),  # the root entry is not a top-level entry
    (names("app/appspec-docs/readme"), "app"),  # the agent matches any entry name containing "appspec"
    (names("appspec.yml", "web/x"), None),  # AppSpec at the root already
    (names("app/web/appspec.yml"), None),  # AppSpec two levels down
    (names("app/appspec.yml", "other/x"), None),  # two top-level entries
    (names("app/readme"), None),  # no AppSpec in the folder
    (names("appspec.yml"), None),  # a single file, not a folder
    ([Member("app", SYMLINK, link_target="x")], None),
])
def test_top_folder_rule(members, expected):
    assert top_folder_to_strip(members) == expected


# --- etag and sha256 -----------------------------------------------------------------------------------------------

MD5 = hashlib.md5(b"bundle").hexdigest()


@pytest.mark.parametrize("etag", [MD5, f'"{MD5}"', MD5.upper(), f'""{MD5}'])
def test_single_part_etag_matches_quote_insensitively(etag):
    assert check_etag(etag, MD5, sha256_given=False) is None


def test_a_different_etag_is_refused_with_the_agent_message():
    with pytest.raises(BundleError) as error:
        check_etag('"0123456789abcdef0123456789abcdef"', MD5, sha256_given=False)
    assert error.value.message == ('Expected deployment artifact bundle etag "0123456789abcdef0123456789abcdef" but '
                                   f"was actually {MD5}")


def test_a_multipart_etag_cannot_be_checked_and_says_so():
    etag = '"0123456789abcdef0123456789abcdef-12"'
    with_sha = check_etag(etag, MD5, sha256_given=True)
    assert "multipart upload ETag" in with_sha and "verified by sha256 only" in with_sha
    assert "give sha256 to verify it" in check_etag(etag, MD5, sha256_given=False)


# --- archives on disk ----------------------------------------------------------------------------------------------

def tree_of(root: Path) -> dict[str, tuple]:
    """Names, kinds, modes and contents of everything under ``root``."""
    found = {}
    for path in sorted(root.rglob("*")):
        status = path.lstat()
        if stat.S_ISLNK(status.st_mode):
            content = ("link", os.readlink(path))
        elif path.is_dir():
            content = ("dir",)
        else:
            content = ("file", path.read_bytes())
        found[str(path.relative_to(root))] = (stat.S_IMODE(status.st_mode), *content)
    return found


@pytest.fixture
def revision(tmp_path) -> Path:
    source = write_tree(tmp_path / "revision", REVISION, REVISION_MODES)
    (source / "web").chmod(0o750)
    return source


def deploy(tmp_path: Path, src: Path, bundle_type: str, deployment_id: str = "d-AAAAAAAAA", **options):
    layout = DeploymentRoot(str(tmp_path / "root"), GROUP)
    plan = plan_download_bundle(layout, deployment_id, str(src), bundle_type,
                                options.pop("max_revisions", 5), options.pop("max_unpacked_size", 0), **options)
    apply_download_bundle(plan)
    return plan


def test_tar_tgz_zip_and_zip_with_a_top_folder_unpack_to_the_same_tree(tmp_path, revision):
    expected = tree_of(revision)
    cases = [("tar", None), ("tgz", None), ("zip", None), ("zip", "my-app"), ("tgz", "my-app")]
    for number, (bundle_type, top) in enumerate(cases):
        archive = archive_tree(revision, tmp_path / f"bundle-{number}", bundle_type, top_folder=top)
        plan = deploy(tmp_path, archive, bundle_type, f"d-{number:09d}")
        assert plan.inspection.stripped_top_folder == top
        assert tree_of(Path(plan.archive_dir)) == expected, (bundle_type, top)
        assert Path(plan.bundle_path).read_bytes() == archive.read_bytes()
        assert Path(plan.layout.most_recent_file).read_text() == plan.deployment_dir


def test_a_directory_source_is_copied_and_a_link_out_of_it_refused(tmp_path, revision):
    plan = deploy(tmp_path, revision, "directory")
    assert tree_of(Path(plan.archive_dir)) == tree_of(revision)
    assert plan.bundle_path is None and not os.path.exists(plan.layout.bundle_path("d-AAAAAAAAA"))
    os.symlink("/etc", revision / "etc")
    with pytest.raises(BundleError, match=r'entry "etc" is a symlink to "/etc", outside the bundle'):
        deploy(tmp_path, revision, "directory", "d-BBBBBBBBB")


def test_the_same_deployment_twice_unpacks_once(tmp_path, revision):
    archive = archive_tree(revision, tmp_path / "b.tar", "tar")
    first = deploy(tmp_path, archive, "tar")
    assert first.changed and first.unpack
    second = deploy(tmp_path, archive, "tar")
    assert not second.changed and not second.unpack and second.pruned == []
    # An interrupted unpack (no marker) is redone.
    os.unlink(os.path.join(first.deployment_dir, bundle.ARCHIVE_MARKER_NAME))
    assert deploy(tmp_path, archive, "tar").unpack


def test_a_hostile_tar_is_refused_before_anything_is_written(tmp_path):
    link = tarfile.TarInfo("etc")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc"
    appspec = (tarfile.TarInfo("appspec.yml"), b"version: 0.0\n")
    archive = tar_with_members(tmp_path / "evil.tar", [appspec, (link, None)])
    with pytest.raises(BundleError, match=r'bundle.tar member "etc" is a symlink to "/etc"'):
        deploy(tmp_path, archive, "tar")
    assert not (tmp_path / "root").exists()


def test_a_zip_symlink_entry_pointing_out_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        info = zipfile.ZipInfo("conf")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zipped.writestr(info, "../../../etc/shadow")
    with pytest.raises(BundleError, match=r'member "conf" is a symlink to "../../../etc/shadow", outside'):
        deploy(tmp_path, archive, "zip")
    assert not (tmp_path / "root").exists()


def test_a_wrong_sha256_or_etag_is_refused_before_anything_is_written(tmp_path, revision):
    archive = archive_tree(revision, tmp_path / "b.tar", "tar")
    with pytest.raises(BundleError, match=r"not the expected 0{64}"):
        deploy(tmp_path, archive, "tar", sha256="0" * 64)
    with pytest.raises(BundleError, match=r"Expected deployment artifact bundle etag"):
        deploy(tmp_path, archive, "tar", etag='"' + "0" * 32 + '"')
    assert not (tmp_path / "root").exists()
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    plan = deploy(tmp_path, archive, "tar", sha256=digest.upper(),
                  etag=f'"{hashlib.md5(archive.read_bytes()).hexdigest()}"')
    assert plan.inspection.sha256 == digest and plan.warnings == []


def test_a_file_that_is_not_an_archive_gets_a_clear_error(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"not an archive" * 100)
    for bundle_type in ("tar", "zip"):
        with pytest.raises(BundleError, match=rf"is not a readable {bundle_type} archive.*check bundle_type"):
            deploy(tmp_path, junk, bundle_type)


def test_pruning_on_disk_keeps_the_newest_and_the_last_successful(tmp_path, revision):
    archive = archive_tree(revision, tmp_path / "b.tgz", "tgz")
    ids = [f"d-{n:09d}" for n in range(1, 6)]
    layout = DeploymentRoot(str(tmp_path / "root"), GROUP)
    for n, deployment_id in enumerate(ids):
        deploy(tmp_path, archive, "tgz", deployment_id, max_revisions=10)
        os.utime(layout.deployment_dir(deployment_id), (1000 + n, 1000 + n))
    Path(layout.last_successful_file).write_text(layout.deployment_dir(ids[0]))
    plan = deploy(tmp_path, archive, "tgz", "d-000000006", max_revisions=3)
    assert plan.pruned == [layout.deployment_dir(i) for i in ids[1:4]]
    assert sorted(os.listdir(layout.group_dir)) == [ids[0], ids[4], "d-000000006"]
    log = Path(layout.deployments_log).read_text()
    assert f'[d-000000006]Delete Files ["{layout.deployment_dir(ids[1])}", ' in log
    assert not os.path.exists(layout.ongoing_file("d-000000006"))


def test_tar_owners_and_modes_are_kept_as_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("owners are only kept as root")
    owned = tarfile.TarInfo("app/owned.txt")
    owned.uid, owned.gid, owned.mode = 1234, 4321, 0o640
    spec = tarfile.TarInfo("app/appspec.yml")
    spec.mode = 0o644
    archive = tar_with_members(tmp_path / "owned.tar", [(spec, b"version: 0.0\n"), (owned, b"data")])
    plan = deploy(tmp_path, archive, "tar")
    status = os.stat(os.path.join(plan.archive_dir, "owned.txt"))
    assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (1234, 4321, 0o640)
    assert plan.inspection.stripped_top_folder == "app"


def test_a_hard_link_inside_a_tar_is_unpacked_as_a_hard_link(tmp_path):
    data = tarfile.TarInfo("a.txt")
    link = tarfile.TarInfo("b.txt")
    link.type, link.linkname = tarfile.LNKTYPE, "a.txt"
    archive = tar_with_members(tmp_path / "links.tar", [(data, b"same"), (link, None)])
    plan = deploy(tmp_path, archive, "tar")
    a, b = (os.stat(os.path.join(plan.archive_dir, name)) for name in ("a.txt", "b.txt"))
    assert a.st_ino == b.st_ino


def test_symlinks_inside_a_zip_or_tar_are_unpacked_as_symlinks(tmp_path):
    zipped_path = tmp_path / "links.zip"
    with zipfile.ZipFile(zipped_path, "w") as zipped:
        zipped.writestr("web/index.html", "hi")
        link = zipfile.ZipInfo("index.html")
        link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        zipped.writestr(link, "web/index.html")
    tar_link = tarfile.TarInfo("index.html")
    tar_link.type, tar_link.linkname = tarfile.SYMTYPE, "web/index.html"
    tarred_path = tar_with_members(tmp_path / "links.tar", [(tarfile.TarInfo("web/index.html"), b"hi"),
                                                            (tar_link, None)])
    for number, (path, bundle_type) in enumerate([(zipped_path, "zip"), (tarred_path, "tar")]):
        plan = deploy(tmp_path, path, bundle_type, f"d-{number:09d}")
        assert os.readlink(os.path.join(plan.archive_dir, "index.html")) == "web/index.html"
        assert Path(plan.archive_dir, "index.html").read_text() == "hi"


def test_zip_members_listing_reads_unix_modes_and_link_targets(tmp_path):
    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        link = zipfile.ZipInfo("l")
        link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        zipped.writestr(link, "target")
        fifo = zipfile.ZipInfo("p")
        fifo.create_system, fifo.external_attr = 3, (stat.S_IFIFO | 0o644) << 16
        zipped.writestr(fifo, "")
        zipped.writestr("d/", "")
        zipped.writestr("f", io.BytesIO(b"abc").read())
    assert bundle.zip_members(str(archive)) == [Member("l", SYMLINK, link_target="target"), Member("p", "a FIFO"),
                                                Member("d/", DIRECTORY), Member("f", FILE, 3)]


def test_a_pushed_bundle_is_stored_under_its_name_when_intact(tmp_path: Path):
    pushed = tmp_path / "tmp" / "bundle.tar"
    pushed.parent.mkdir()
    pushed.write_bytes(b"bundle bytes")
    destination = tmp_path / "root" / "fleetops-bundles" / "x.tar"
    bundle.receive_pushed_bundle(str(pushed), str(destination), hashlib.sha256(b"bundle bytes").hexdigest())
    assert destination.read_bytes() == b"bundle bytes"
    assert not pushed.exists()


def test_placing_a_bundle_does_not_depend_on_a_fixed_partial_name(tmp_path: Path):
    """Another placement of the same bundle in progress (here: its fixed-name partial file in the way) does not
    collide with this one."""
    pushed = tmp_path / "pushed.tar"
    pushed.write_bytes(b"bundle bytes")
    destination = tmp_path / "store" / "x.tar"
    destination.parent.mkdir()
    (tmp_path / "store" / "x.tar.partial").mkdir()
    bundle.place_bundle(str(pushed), str(destination), hashlib.sha256(b"bundle bytes").hexdigest())
    assert destination.read_bytes() == b"bundle bytes"
    assert oct(destination.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in destination.parent.iterdir()) == ["x.tar", "x.tar.partial"]


def test_a_damaged_push_is_refused_and_nothing_is_stored(tmp_path: Path):
    pushed = tmp_path / "bundle.tar"
    pushed.write_bytes(b"damaged")
    destination = tmp_path / "store" / "x.tar"
    expected = hashlib.sha256(b"bundle bytes").hexdigest()
    with pytest.raises(BundleError) as error:
        bundle.receive_pushed_bundle(str(pushed), str(destination), expected)
    assert error.value.message == (
        f"The bundle pushed to {pushed} has sha256 {hashlib.sha256(b'damaged').hexdigest()}, not {expected}: "
        "it was damaged in transfer. Run the deployment again.")
    assert list(destination.parent.iterdir()) == []
    assert not pushed.exists()


# --- control characters in names -----------------------------------------------------------------------------------

NEWLINE_ENTRY = "nl/x\n/srv/victim2"


@pytest.mark.parametrize("bundle_type", ["tar", "tgz", "zip", "directory"])
def test_a_newline_in_a_name_is_refused_before_anything_is_written(tmp_path, revision, bundle_type):
    (revision / "nl" / "x\n" / "srv").mkdir(parents=True)
    (revision / "nl" / "x\n" / "srv" / "victim2").write_text("planted\n")
    src = revision if bundle_type == "directory" else archive_tree(revision, tmp_path / "b", bundle_type)
    with pytest.raises(BundleError) as refused:
        deploy(tmp_path, src, bundle_type)
    # The message names the entry on one line, with the character spelled out.
    assert "\n" not in str(refused.value)
    assert re.search(r'"nl/x\\n/?" has a newline \(U\+000A\) in its name', str(refused.value))
    assert "rename it in the revision" in str(refused.value)
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("name, named", [
    ("a\rb", "a carriage return (U+000D)"), ("tab\there", "a tab (U+0009)"), ("esc\x1b[2J", "a control character "
                                                                                            "(U+001B)"),
    ("del\x7f", "a control character (U+007F)"), ("csi\x9b", "a control character (U+009B)")])
def test_other_control_characters_in_names_are_refused(name, named):
    with pytest.raises(BundleError, match=re.escape(f"has {named} in its name")):
        validate_members([Member(name, FILE, 1)], LABEL, 0)


def test_a_control_character_in_a_link_target_is_refused_and_other_names_pass():
    with pytest.raises(BundleError, match=re.escape(r'"link" has a newline (U+000A) in its link target')):
        validate_members([Member("x", FILE, 1), Member("link", SYMLINK, link_target="x\n")], LABEL, 0)
    # Non-ASCII names, spaces and backslashes are names like any other.
    validate_members([Member("café/naïve file\\ok.txt", FILE, 1), Member("\udcff-latin1", FILE, 1)], LABEL, 0)


# --- the bundle store ------------------------------------------------------------------------------------------------

STORE_NOW = 100_000.0


def test_store_pruning_keeps_bundles_of_kept_revisions_and_young_orphans():
    store = [("a.tar", 10.0), ("b.zip", STORE_NOW - 5), ("c.tgz", 10.0), ("d.tar", STORE_NOW - 5),
             ("e.tar", 10.0), ("a.tar.x1.partial", STORE_NOW - 5), ("b.tar.x2.partial", 10.0)]
    # a: kept revision; b: released by this pruning; c: released but still used by another group's kept revision;
    # d: an orphan pushed a moment ago; e: an orphan an hour old; partials: one young, one stale.
    doomed = bundle.plan_store_pruning(store, kept={"a", "c"}, released={"b", "c"}, now=STORE_NOW)
    assert doomed == ["b.tar.x2.partial", "b.zip", "e.tar"]


def test_download_bundle_drops_the_pushed_bundles_of_pruned_revisions(tmp_path, revision):
    layout = DeploymentRoot(str(tmp_path / "root"), GROUP)
    store = Path(tmp_path / "root" / "fleetops-bundles")
    store.mkdir(parents=True)
    other_group = DeploymentRoot(layout.root, "0b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d")
    pushed = []
    for version in range(3):
        (revision / "web" / "index.html").write_text(f"version {version}\n")
        archive = archive_tree(revision, tmp_path / f"b{version}.tar", "tar")
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        pushed.append(store / f"{digest}.tar")
        pushed[-1].write_bytes(archive.read_bytes())
    (store / "leftover.tar.abc.partial").write_bytes(b"half")
    os.utime(store / "leftover.tar.abc.partial", (1000, 1000))
    # Another group on the host keeps revision 0 too: its bundle stays while that group keeps it.
    plan = plan_download_bundle(other_group, "d-OTHER0000", str(pushed[0]), "tar", 1, 0)
    apply_download_bundle(plan)
    assert plan.pruned_bundles == [str(store / "leftover.tar.abc.partial")]
    for number in range(3):
        plan = deploy(tmp_path, pushed[number], "tar", f"d-{number:09d}", max_revisions=1)
        os.utime(layout.deployment_dir(f"d-{number:09d}"), (1000 + number, 1000 + number))
        Path(layout.last_successful_file).write_text(layout.deployment_dir(f"d-{number:09d}"))
    # Revision 0's directory is pruned by the third deployment, revision 1 is the last successful before it.
    assert sorted(os.listdir(layout.group_dir)) == ["d-000000001", "d-000000002"]
    assert sorted(os.listdir(store)) == sorted(path.name for path in pushed)
    # Once no group uses it, a bundle goes with the revision a pruning releases, or when an hour old.
    shutil.rmtree(other_group.group_dir)
    plan = deploy(tmp_path, pushed[2], "tar", "d-000000003", max_revisions=1)
    assert plan.pruned_bundles == [str(pushed[1])]
    os.utime(pushed[0], (1000, 1000))
    plan = deploy(tmp_path, pushed[2], "tar", "d-000000004", max_revisions=1)
    assert plan.pruned_bundles == [str(pushed[0])]
    assert os.listdir(store) == [pushed[2].name]
    assert "Delete pushed bundles no kept revision uses" in Path(layout.deployments_log).read_text()


def test_the_store_pruning_reads_only_unpacked_revisions_of_group_directories(tmp_path, revision):
    layout = DeploymentRoot(str(tmp_path / "root"), GROUP)
    os.makedirs(layout.group_dir)
    Path(layout.group_dir, "notes.txt").write_text("a file someone left among the revisions\n")
    os.makedirs(layout.instructions_dir)
    plan = deploy(tmp_path, archive_tree(revision, tmp_path / "b.tar", "tar"), "tar")
    assert bundle.unpacked_digests(layout.root) == {plan.deployment_dir: plan.inspection.sha256}


# --- one name, two kinds -------------------------------------------------------------------------------------------

def masked_link_members(victim: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """Each link is followed by a directory of the same name: only the last kind of a name was checked, while
    extraction keeps the link (a directory member over an existing link to a directory is left as the link)."""
    def member(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode = kind, target, 0o755
        return info

    # "s/s/…/s/../../…" climbs to "/" when it has more ".." than the unpack directory is deep (and fewer links
    # than the kernel follows in one path).
    depth = len(victim.parts) + 6
    climb = "s/" * depth + "../" * depth + str(victim).lstrip("/")
    return [(member("appspec.yml", tarfile.REGTYPE), b"version: 0.0\n"),
            (member("s", tarfile.SYMTYPE, "."), None), (member("s", tarfile.DIRTYPE), None),
            (member("out", tarfile.SYMTYPE, climb), None), (member("out", tarfile.DIRTYPE), None),
            (member("out/planted", tarfile.REGTYPE), b"evil\n")]


def test_a_link_hidden_behind_a_directory_of_the_same_name_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    archive = tar_with_members(tmp_path / "masked.tar", masked_link_members(victim))
    with pytest.raises(BundleError, match=r'member "s" is both a symlink and a directory in the bundle'):
        deploy(tmp_path, archive, "tar")
    assert list(victim.iterdir()) == []
