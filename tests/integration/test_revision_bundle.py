# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""revision_bundle on real fleet hosts: DownloadBundle's layout, pruning, safety and idempotence."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
import zipfile
from pathlib import Path

from support.revisions import archive_tree, tar_with_members, write_tree

MODULE = "fleetops.codedeploy.revision_bundle"
ROOT = "/opt/codedeploy-agent/deployment-root"
GROUP = "4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d"
GROUP_DIR = f"{ROOT}/{GROUP}"
BUNDLES = "/srv/bundles"
REVISION = {
    "appspec.yml": "version: 0.0\nos: linux\nfiles:\n  - source: web\n    destination: /var/www/app\n",
    "scripts/start.sh": "#!/bin/sh\necho start\n",
    "web/index.html": "<h1>hello</h1>\n",
    "web/private/secret.txt": "s3cret\n",
}
REVISION_MODES = {"web/private/secret.txt": 0o600, "scripts/start.sh": 0o750}
APPSPEC = (tarfile.TarInfo("appspec.yml"), b"version: 0.0\nos: linux\n")


def args(number: int, src: str, bundle_type: str, **options) -> dict:
    return dict(deployment_id=deployment_id(number), deployment_group_id=GROUP,
                deployment_group_name="web-production", application_name="web", src=src, bundle_type=bundle_type,
                **options)


def deployment_id(number: int) -> str:
    return f"d-{number:09d}"


def tree_of(root: Path, with_owners: bool = False) -> dict[str, tuple]:
    """Names, modes and contents (and owners) of everything under ``root``, as a user would compare them."""
    found = {}
    for path in sorted(root.rglob("*")):
        status = path.lstat()
        content = os.readlink(path) if path.is_symlink() else None if path.is_dir() else path.read_bytes()
        owners = (status.st_uid, status.st_gid) if with_owners else ()
        found[str(path.relative_to(root))] = (stat.S_IMODE(status.st_mode), content, *owners)
    return found


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything under ``root`` with modes, sizes and modification times, to prove that nothing was touched."""
    if not root.exists():
        return {}
    return {str(path.relative_to(root)): (path.lstat().st_mode, path.lstat().st_size, path.lstat().st_mtime_ns)
            for path in sorted(root.rglob("*"))}


def push_tasks(bundles: Path, tmp_path: Path) -> list[dict]:
    """Tasks putting the contents of ``bundles`` in /srv/bundles, links and modes kept, in one transfer."""
    contents = list(bundles.iterdir())
    if len(contents) == 1 and contents[0].is_file():
        return [{"name": "Copy the bundle", "ansible.builtin.copy": {"src": str(contents[0]), "dest": f"{BUNDLES}/"}}]
    carrier = tmp_path / "bundles-carrier.tar"
    with tarfile.open(carrier, "w") as archive:
        archive.add(bundles, arcname=".")
    return [
        {"name": "Make the bundles directory", "ansible.builtin.file": {"path": BUNDLES, "state": "directory"}},
        {"name": "Copy the bundles", "ansible.builtin.unarchive": {"src": str(carrier), "dest": BUNDLES}},
    ]


def play(fleet, tmp_path: Path, tasks: list[dict], pattern: str = "fleet") -> tuple[object, dict[str, dict]]:
    """Run ``tasks`` in one playbook; return the run and, per host, every registered result."""
    kept = tmp_path / "registered"
    kept.mkdir(exist_ok=True)
    for stale in kept.glob("*.json"):
        stale.unlink()
    registered = ", ".join(f"'{task['register']}': {task['register']}" for task in tasks if "register" in task)
    keep = {"name": "Keep the registered results", "delegate_to": "localhost",
            "ansible.builtin.copy": {"content": f"{{{{ {{{registered}}} | to_json }}}}",
                                     "dest": f"{kept}/{{{{ inventory_hostname }}}}.json"}}
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": pattern, "gather_facts": False, "tasks": [*tasks, keep]}]))
    run = fleet.playbook(playbook)
    return run, {path.stem: json.loads(path.read_text()) for path in kept.glob("*.json")}


def deploy_task(register: str, module_args: dict, **task) -> dict:
    return {"name": f"Deploy ({register})", MODULE: module_args, "register": register, **task}


def test_every_bundle_type_unpacks_to_the_same_tree_with_the_agent_layout(fleet, tmp_path):
    one = fleet(1)
    host = one.hosts[0]
    revision = write_tree(tmp_path / "revision", REVISION, REVISION_MODES)
    (revision / "web").chmod(0o750)
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    cases = [("app.tar", "tar", None), ("app.tgz", "tgz", None), ("app.zip", "zip", None),
             ("nested.zip", "zip", "my-app"), ("revision", "directory", None)]
    for name, bundle_type, top in cases[:-1]:
        archive_tree(revision, bundles / name, bundle_type, top_folder=top)
    write_tree(bundles / "revision", REVISION, REVISION_MODES)
    (bundles / "revision" / "web").chmod(0o750)
    tar_bytes = (bundles / "app.tar").read_bytes()
    verify = {
        "app.tar": dict(sha256=hashlib.sha256(tar_bytes).hexdigest(), etag=f'"{hashlib.md5(tar_bytes).hexdigest()}"'),
        "app.zip": dict(etag='"0123456789abcdef0123456789abcdef-3"'),
    }
    tasks = [deploy_task(f"case{number}", args(number, f"{BUNDLES}/{name}", bundle_type, **verify.get(name, {})))
             for number, (name, bundle_type, top) in enumerate(cases, start=1)]
    again = deploy_task("again", args(3, f"{BUNDLES}/app.zip", "zip", **verify["app.zip"]))

    run, registered = play(one, tmp_path, [*push_tasks(bundles, tmp_path), *tasks, again])

    assert run.rc == 0, run.output
    for number, (name, bundle_type, top) in enumerate(cases, start=1):
        result = registered[host][f"case{number}"]
        deployment_dir = f"{GROUP_DIR}/{deployment_id(number)}"
        assert result["changed"] is True, result
        assert result["deployment_dir"] == deployment_dir
        assert result["archive_dir"] == f"{deployment_dir}/deployment-archive"
        assert result["stripped_top_folder"] == top
        assert result["pruned"] == []
        assert tree_of(one.path(host, result["archive_dir"])) == tree_of(revision), name
        assert not one.path(host, f"{ROOT}/ongoing-deployment/{deployment_id(number)}").exists()
        if bundle_type == "directory":
            assert result["bundle_path"] is None
            assert not one.path(host, f"{deployment_dir}/bundle.tar").exists()
        else:
            kept = one.path(host, f"{deployment_dir}/bundle.tar")
            assert kept.read_bytes() == (bundles / name).read_bytes(), "bundle.tar is a copy of src"
            assert result["bundle_sha256"] == hashlib.sha256(kept.read_bytes()).hexdigest()
            assert one.path(host, f"{BUNDLES}/{name}").exists(), "src is left in place"
    # The zip again: not unpacked twice, made the most recent install again, and the unverifiable ETag is said.
    assert registered[host]["again"]["unpacked"] is False and registered[host]["again"]["changed"] is True
    assert "is a multipart upload ETag, which cannot be recomputed from the file" in run.output
    pointer = one.path(host, f"{ROOT}/deployment-instructions/{GROUP}_most_recent_install").read_text()
    assert pointer == f"{GROUP_DIR}/{deployment_id(3)}"
    log = one.path(host, f"{ROOT}/deployment-logs/codedeploy-agent-deployments.log").read_text()
    assert f"[{deployment_id(4)}]Stripping leading directory from archive bundle contents." in log


def test_max_revisions_keeps_the_newest_and_never_the_last_successful(fleet, tmp_path):
    two = fleet(2)
    plain, with_pointer = two.hosts
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    archive_tree(write_tree(tmp_path / "revision", REVISION), bundles / "app.tgz", "tgz")
    src = f"{BUNDLES}/app.tgz"
    # Install succeeded on the first deployment only: on one host the pointer names it from then on.
    pointer = {"name": "Record the first deployment as the last successful install", "when":
               f"inventory_hostname == '{with_pointer}'", "ansible.builtin.copy": {
                   "dest": f"{ROOT}/deployment-instructions/{GROUP}_last_successful_install",
                   "content": f"{GROUP_DIR}/{deployment_id(1)}"}}
    tasks = [deploy_task("first", args(1, src, "tgz", max_revisions=3)), pointer,
             *(deploy_task(f"d{number}", args(number, src, "tgz", max_revisions=3)) for number in (2, 3, 4))]

    run, registered = play(two, tmp_path, [*push_tasks(bundles, tmp_path), *tasks])

    assert run.rc == 0, run.output
    assert [registered[plain][f"d{n}"]["pruned"] for n in (2, 3, 4)] == [[], [], [f"{GROUP_DIR}/{deployment_id(1)}"]]
    assert registered[with_pointer]["d4"]["pruned"] == [f"{GROUP_DIR}/{deployment_id(2)}"]

    before = {host: snapshot(two.path(host, ROOT)) for host in two.hosts}
    checked = two.results("fleet", MODULE, args(5, src, "tgz", max_revisions=3), "--check", "--diff")
    assert checked[plain]["changed"] is True and checked[plain]["unpacked"] is True
    assert checked[plain]["pruned"] == [f"{GROUP_DIR}/{deployment_id(2)}"]
    assert {host: snapshot(two.path(host, ROOT)) for host in two.hosts} == before, "check mode changed nothing"

    results = two.results("fleet", MODULE, args(5, src, "tgz", max_revisions=3))
    assert results[plain]["pruned"] == [f"{GROUP_DIR}/{deployment_id(2)}"]
    assert results[with_pointer]["pruned"] == [f"{GROUP_DIR}/{deployment_id(3)}"]
    assert sorted(os.listdir(two.path(plain, GROUP_DIR))) == [deployment_id(n) for n in (3, 4, 5)]
    assert sorted(os.listdir(two.path(with_pointer, GROUP_DIR))) == [deployment_id(n) for n in (1, 4, 5)]


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def zip_symlink(path: Path, name: str, target: str) -> None:
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("appspec.yml", APPSPEC[1])
        link = zipfile.ZipInfo(name)
        link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        zipped.writestr(link, target)


def test_hostile_bundles_are_refused_naming_the_member_and_nothing_is_written(fleet, tmp_path):
    one = fleet(1)
    host = one.hosts[0]
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    archive_tree(write_tree(tmp_path / "revision", REVISION), bundles / "good.tar", "tar")
    tar_with_members(bundles / "absolute.tar", [APPSPEC, (tar_member("/etc/cron.d/evil"), b"* * * * * root id\n")])
    tar_with_members(bundles / "dotdot.tar", [APPSPEC, (tar_member("../etc/passwd"), b"evil::0:0::/:/bin/sh\n")])
    tar_with_members(bundles / "symlink.tar", [APPSPEC, (tar_member("etc", tarfile.SYMTYPE, "/etc"), None)])
    tar_with_members(bundles / "hardlink.tar", [APPSPEC, (tar_member("shadow", tarfile.LNKTYPE, "/etc/shadow"), None)])
    tar_with_members(bundles / "fifo.tar", [APPSPEC, (tar_member("run/pipe", tarfile.FIFOTYPE), None)])
    tar_with_members(bundles / "large.tar", [APPSPEC, (tar_member("big.bin"), b"\0" * 4096)])
    with zipfile.ZipFile(bundles / "dotdot.zip", "w") as zipped:
        zipped.writestr("appspec.yml", APPSPEC[1])
        zipped.writestr("../../evil.sh", "#!/bin/sh\n")
    zip_symlink(bundles / "symlink.zip", "conf", "/etc")
    linked = write_tree(bundles / "linked", {"appspec.yml": APPSPEC[1].decode()})
    os.symlink("../../../etc", linked / "etc")
    # A newline would split the name in two in the cleanup record: "nl/x" and "/srv/victim2".
    tar_with_members(bundles / "newline.tar", [APPSPEC, (tar_member("nl/x\n/srv/victim2"), b"planted\n")])
    with zipfile.ZipFile(bundles / "newline.zip", "w") as zipped:
        zipped.writestr("appspec.yml", APPSPEC[1])
        zipped.writestr("nl/x\r/srv/victim2", "planted\n")
    write_tree(bundles / "newline-dir", {"appspec.yml": APPSPEC[1].decode(), "x\n/srv/victim2": "planted\n"})

    run, registered = play(one, tmp_path, [*push_tasks(bundles, tmp_path),
                                           deploy_task("good", args(1, f"{BUNDLES}/good.tar", "tar"))])
    assert run.rc == 0 and registered[host]["good"]["changed"] is True, run.output
    before = snapshot(one.path(host, ROOT))

    refused = [
        ("absolute.tar", "tar", 'bundle.tar member "/etc/cron.d/evil" escapes the bundle: member names must be '
                                "relative paths inside it"),
        ("dotdot.tar", "tar", 'bundle.tar member "../etc/passwd" escapes the bundle: member names must be relative '
                              "paths inside it"),
        ("symlink.tar", "tar", 'bundle.tar member "etc" is a symlink to "/etc", outside the bundle'),
        ("hardlink.tar", "tar", 'bundle.tar member "shadow" is a hard link to "/etc/shadow", outside the bundle'),
        ("fifo.tar", "tar", 'bundle.tar member "run/pipe" is a FIFO'),
        ("large.tar", "tar", 'bundle.tar member "big.bin" (4096 bytes) passes the limit'),
        ("dotdot.zip", "zip", 'bundle.tar member "../../evil.sh" escapes the bundle'),
        ("symlink.zip", "zip", 'bundle.tar member "conf" is a symlink to "/etc", outside the bundle'),
        ("linked", "directory", f'src directory "{BUNDLES}/linked" entry "etc" is a symlink to "../../../etc", '
                                "outside the bundle"),
        ("newline.tar", "tar", 'bundle.tar member "nl/x\\n/srv/victim2" has a newline (U+000A) in its name: names '
                               "and link targets of a bundle may not hold control characters; rename it"),
        ("newline.zip", "zip", 'bundle.tar member "nl/x\\r/srv/victim2" has a carriage return (U+000D) in its name'),
        ("newline-dir", "directory", f'src directory "{BUNDLES}/newline-dir" entry "x\\n" has a newline (U+000A)'),
        ("good.tar", "tar", "max_revisions must be 1 or more"),
    ]
    hostile = deploy_task("refused", {
        **args(2, f"{BUNDLES}/{{{{ item.0 }}}}", "{{ item.1 }}"),
        # max_revisions 1 would prune the good deployment if pruning came before the checks.
        "max_revisions": "{{ item.2 }}", "max_unpacked_size": 1024,
    }, loop=[[name, bundle_type, 0 if name == "good.tar" else 1] for name, bundle_type, message in refused],
        ignore_errors=True)

    run, registered = play(one, tmp_path, [hostile])

    assert run.rc == 0, run.output
    for (name, bundle_type, message), result in zip(refused, registered[host]["refused"]["results"]):
        assert result.get("failed") is True, (name, result)
        assert message in result["msg"], (name, result["msg"])
    assert snapshot(one.path(host, ROOT)) == before, "nothing under the deployment root changed"
    assert not one.path(host, f"{GROUP_DIR}/{deployment_id(2)}").exists()


def test_owners_and_modes_are_kept_and_the_same_deployment_twice_changes_nothing(fleet, tmp_path):
    one = fleet(1)
    host = one.hosts[0]
    bundles = tmp_path / "bundles"
    bundles.mkdir()

    def owned(name: str, mode: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
        info = tar_member(name, kind)
        info.mode, info.uid, info.gid = mode, 1234, 4321
        return info

    tar_with_members(bundles / "owned.tar", [
        (owned("app", 0o750, tarfile.DIRTYPE), None),
        (owned("app/appspec.yml", 0o644), b"version: 0.0\nos: linux\n"),
        (owned("app/bin", 0o2755, tarfile.DIRTYPE), None),
        (owned("app/bin/run.sh", 0o4750), b"#!/bin/sh\n"),
        (owned("app/data.txt", 0o600), b"data\n"),
    ])
    deploy = args(1, f"{BUNDLES}/owned.tar", "tar")

    run, registered = play(one, tmp_path, [*push_tasks(bundles, tmp_path), deploy_task("first", deploy)])

    assert run.rc == 0, run.output
    first = registered[host]["first"]
    assert first["changed"] is True and first["stripped_top_folder"] == "app", first
    archive = one.path(host, first["archive_dir"])
    assert tree_of(archive, with_owners=True) == {
        "appspec.yml": (0o644, b"version: 0.0\nos: linux\n", 1234, 4321),
        "bin": (0o2755, None, 1234, 4321),
        "bin/run.sh": (0o4750, b"#!/bin/sh\n", 1234, 4321),
        "data.txt": (0o600, b"data\n", 1234, 4321),
    }
    assert (stat.S_IMODE(archive.stat().st_mode), archive.stat().st_uid) == (0o750, 1234)
    before = snapshot(one.path(host, ROOT))

    second = one.results(host, MODULE, deploy)[host]

    assert second["changed"] is False and second["unpacked"] is False, second
    assert second["bundle_sha256"] == first["bundle_sha256"]
    assert snapshot(one.path(host, ROOT)) == before
