# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Install's planning, over in-memory descriptions of a bundle and of a host, and its apply part on tmp dirs."""
from __future__ import annotations

import json
import os
from typing import Any

import pytest

from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import normalise_appspec
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import DeploymentRoot
from ansible_collections.fleetops.codedeploy.plugins.module_utils.install_plan import (
    ArchiveEntry,
    ChangeMode,
    CleanupEntry,
    Copy,
    HostFacts,
    InstallError,
    InstallResult,
    MakeDirectory,
    PathFacts,
    SetAcl,
    SetContext,
    apply_install,
    full_acl,
    gather_facts,
    instructions_json,
    matches_simple_glob,
    parse_ace,
    parse_cleanup,
    plan_diff,
    plan_install,
    run_cleanup,
    simulate_cleanup,
)

ARCHIVE = "/root/dg/d-A/deployment-archive"
ALL_TOOLS = frozenset({"setfacl", "semanage", "restorecon"})


def bundle(tree: dict[str, Any]) -> dict[str, ArchiveEntry]:
    """{"name": "file" | {subtree} | ("link", text, resolves_to)} -> the bundle's members; dict order = readdir."""
    members: dict[str, ArchiveEntry] = {}

    def add(relative: str, node: Any) -> None:
        if node == "file":
            members[relative] = ArchiveEntry("file")
        elif node == "fifo":
            members[relative] = ArchiveEntry("other")
        elif isinstance(node, tuple):
            members[relative] = ArchiveEntry("symlink", link_text=node[1], resolves_to=node[2])
        else:
            members[relative] = ArchiveEntry("directory", children=tuple(node))
            for name, child in node.items():
                add(f"{relative}/{name}" if relative else name, child)

    add("", tree)
    return members


def host(tree: dict[str, Any], paths: dict[str, str] | None = None, users=("deploy",), groups=("deploy",),
         tools=ALL_TOOLS) -> HostFacts:
    """Facts of a host: paths given as "file", "directory", "dir-link" (symlink to a directory) or "link"."""
    facts = {}
    for path, kind in (paths or {}).items():
        facts[path] = {
            "file": PathFacts("file", "file"),
            "directory": PathFacts("directory", "directory"),
            "dir-link": PathFacts("symlink", "directory"),
            "link": PathFacts("symlink", "file"),
            "dangling": PathFacts("symlink", "missing"),
        }[kind]
    return HostFacts(ARCHIVE, bundle(tree), facts, frozenset(tools), frozenset(users), frozenset(groups))


def spec(files=(), permissions=(), **extra) -> dict[str, Any]:
    return normalise_appspec({"version": 0.0, "os": "linux", "files": list(files),
                              "permissions": list(permissions), **extra})[0]


def plan(appspec, facts, cleanup=(), behavior="DISALLOW"):
    return plan_install(appspec, facts, list(cleanup), behavior)


def error_of(appspec, facts, cleanup=(), behavior="DISALLOW") -> str:
    with pytest.raises(InstallError) as caught:
        plan(appspec, facts, cleanup, behavior)
    return caught.value.message


def steps(result) -> list[tuple]:
    """Instructions as short tuples, for readable assertions."""
    shown = []
    for i in result.instructions:
        if isinstance(i, MakeDirectory):
            shown.append(("mkdir", i.directory))
        elif isinstance(i, Copy):
            shown.append(("copy", i.source.replace(ARCHIVE, "@"), i.destination))
        elif isinstance(i, ChangeMode):
            shown.append(("chmod", i.mode, i.path))
        elif isinstance(i, SetAcl):
            shown.append(("setfacl", i.entries, i.path))
        elif isinstance(i, SetContext):
            shown.append(("semanage", i.selinux_type, i.path))
        else:
            shown.append(("chown", i.owner, i.group, i.path))
    return shown


SITE = {"appspec.yml": "file", "index.html": "file", "css": {"site.css": "file"}, "scripts": {"start.sh": "file"}}
EXISTING_WWW = {"/var": "directory", "/var/www": "directory"}


# The cleanup file

def test_cleanup_lines_keep_file_order_and_mark_selinux_contexts():
    text = "/var/www/app\n/var/www/app/index.html\nsemanage\0/var/www/app/index.html\n"
    assert parse_cleanup(text) == [CleanupEntry("/var/www/app"), CleanupEntry("/var/www/app/index.html"),
                                   CleanupEntry("/var/www/app/index.html", selinux_context=True)]


def test_cleanup_drops_an_unfinished_last_line_and_empty_lines():
    assert parse_cleanup("/a\n\n  /b \n/c/half-writ") == [CleanupEntry("/a"), CleanupEntry("/b")]
    assert parse_cleanup("") == []
    assert parse_cleanup("/only-unfinished") == []


def test_cleanup_removes_in_reverse_and_a_directory_only_once_emptied():
    entries = parse_cleanup("/w/app\n/w/app/a\n/w/app/sub\n/w/app/sub/b\n/w/app/link\n/w/gone\n/w/kept\n")
    paths = {
        "/w/app": PathFacts("directory", "directory", ("a", "sub", "link")),
        "/w/app/a": PathFacts("file", "file"),
        "/w/app/sub": PathFacts("directory", "directory", ("b",)),
        "/w/app/sub/b": PathFacts("file", "file"),
        "/w/app/link": PathFacts("symlink", "directory"),  # a symlink is removed itself, never followed
        "/w/kept": PathFacts("directory", "directory", ("someone-elses.txt",)),
    }
    assert simulate_cleanup(entries, paths) == ["/w/app/link", "/w/app/sub/b", "/w/app/sub", "/w/app/a", "/w/app"]


def test_selinux_cleanup_lines_remove_no_path():
    entries = parse_cleanup("/w/a\nsemanage\0/w/a\n")
    assert simulate_cleanup(entries, {"/w/a": PathFacts("file", "file")}) == ["/w/a"]


# Files: where things go

def test_a_file_source_keeps_its_name_in_the_destination_directory_and_missing_ancestors_are_made_top_down():
    result = plan(spec([{"source": "css/site.css", "destination": "/var/www/app/static"}]), host(SITE, EXISTING_WWW))
    assert steps(result) == [
        ("mkdir", "/var/www/app"),
        ("mkdir", "/var/www/app/static"),
        ("copy", "@/css/site.css", "/var/www/app/static/site.css"),
    ]


def test_a_directory_source_copies_its_contents_recursively_in_bundle_order():
    files = [{"source": "/css", "destination": "/var/www/app"}, {"source": "scripts/", "destination": "/srv/app/bin"}]
    result = plan(spec(files), host(SITE, {**EXISTING_WWW, "/srv": "directory"}))
    assert steps(result) == [
        ("mkdir", "/var/www/app"),
        ("copy", "@/css/site.css", "/var/www/app/site.css"),
        ("mkdir", "/srv/app"),
        ("mkdir", "/srv/app/bin"),
        ("copy", "@/scripts/start.sh", "/srv/app/bin/start.sh"),
    ]


def test_source_slash_is_the_whole_bundle_and_existing_directories_are_not_recorded():
    result = plan(spec([{"source": "/", "destination": "/var/www"}]), host(SITE, EXISTING_WWW))
    assert steps(result) == [
        ("copy", "@/appspec.yml", "/var/www/appspec.yml"),
        ("copy", "@/index.html", "/var/www/index.html"),
        ("mkdir", "/var/www/css"),
        ("copy", "@/css/site.css", "/var/www/css/site.css"),
        ("mkdir", "/var/www/scripts"),
        ("copy", "@/scripts/start.sh", "/var/www/scripts/start.sh"),
    ]


def test_a_directory_made_by_two_entries_is_made_once():
    result = plan(spec([{"source": "index.html", "destination": "/var/www/app"},
                        {"source": "css", "destination": "/var/www/app"}]), host(SITE, EXISTING_WWW))
    assert steps(result) == [("mkdir", "/var/www/app"), ("copy", "@/index.html", "/var/www/app/index.html"),
                             ("copy", "@/css/site.css", "/var/www/app/site.css")]


# Files: file_exists_behavior

def test_disallow_refuses_an_existing_file_with_the_agent_message_at_any_depth():
    appspec = spec([{"source": "/", "destination": "/var/www"}])
    facts = host(SITE, {**EXISTING_WWW, "/var/www/css": "directory", "/var/www/css/site.css": "file"})
    assert error_of(appspec, facts) == (
        "The deployment failed because a specified file already exists at this location: /var/www/css/site.css")


def test_disallow_does_not_count_files_the_previous_install_leaves_to_its_cleanup():
    appspec = spec([{"source": "css", "destination": "/var/www/app"}])
    cleanup = parse_cleanup("/var/www/app\n/var/www/app/site.css\n")
    facts = host(SITE, {**EXISTING_WWW, "/var/www/app/site.css": "file"})
    facts.paths["/var/www/app"] = PathFacts("directory", "directory", ("site.css",))
    result = plan(appspec, facts, cleanup)
    assert result.removed == ["/var/www/app/site.css", "/var/www/app"]
    assert steps(result) == [("mkdir", "/var/www/app"), ("copy", "@/css/site.css", "/var/www/app/site.css")]


def test_the_appspec_file_exists_behavior_wins_over_the_deployment_option():
    appspec = spec([{"source": "index.html", "destination": "/var/www"}], file_exists_behavior="OVERWRITE")
    result = plan(appspec, host(SITE, {**EXISTING_WWW, "/var/www/index.html": "file"}), behavior="DISALLOW")
    assert result.file_exists_behavior == "OVERWRITE"
    assert result.instructions == [Copy(f"{ARCHIVE}/index.html", "/var/www/index.html", None, replaces=True)]


def test_overwrite_copies_over_existing_files_and_retain_keeps_them_without_permissions():
    appspec = spec([{"source": "/css", "destination": "/var/www/app"}],
                   [{"object": "/var/www/app", "mode": "640", "type": ["file"]}])
    facts = host(SITE, {**EXISTING_WWW, "/var/www/app": "directory", "/var/www/app/site.css": "file"})
    overwrite = plan(appspec, facts, behavior="OVERWRITE")
    assert steps(overwrite) == [("copy", "@/css/site.css", "/var/www/app/site.css"),
                                ("chmod", "640", "/var/www/app/site.css")]
    retain = plan(appspec, facts, behavior="RETAIN")
    assert retain.instructions == [] and retain.retained == ["/var/www/app/site.css"]


def test_overwrite_will_not_replace_a_directory_with_a_file():
    appspec = spec([{"source": "index.html", "destination": "/var/www"}])
    message = error_of(appspec, host(SITE, {**EXISTING_WWW, "/var/www/index.html": "directory"}), behavior="OVERWRITE")
    assert message.startswith("Cannot overwrite the directory /var/www/index.html with the file ")


def test_a_dangling_symlink_exists_refused_by_disallow_kept_by_retain_replaced_by_overwrite():
    appspec = spec([{"source": "index.html", "destination": "/var/www"}])
    facts = host(SITE, {**EXISTING_WWW, "/var/www/index.html": "dangling"})
    assert error_of(appspec, facts) == (
        "The deployment failed because a specified file already exists at this location: /var/www/index.html")
    assert plan(appspec, facts, behavior="RETAIN").retained == ["/var/www/index.html"]
    assert plan(appspec, facts, behavior="OVERWRITE").instructions == [
        Copy(f"{ARCHIVE}/index.html", "/var/www/index.html", None, replaces=True)]


# Files: conflicts within the AppSpec

def test_two_sources_for_one_destination_give_the_agent_message():
    tree = {"a": {"x.conf": "file"}, "b": {"x.conf": "file"}}
    appspec = spec([{"source": "a/x.conf", "destination": "/etc/fleet-app"},
                    {"source": "b/x.conf", "destination": "/etc/fleet-app"}])
    assert error_of(appspec, host(tree, {"/etc": "directory", "/etc/fleet-app": "directory"})) == (
        f"The deployment failed because the application specification file specifies two source files named"
        f" {ARCHIVE}/b/x.conf and {ARCHIVE}/a/x.conf for the same destination (/etc/fleet-app/x.conf). Remove one"
        f" of the source file paths from the AppSpec file, and then try again.")


def test_a_file_where_a_directory_is_made_and_the_reverse_give_the_agent_messages():
    tree = {"conf": {"app": "file"}, "tree": {"app": {"x": "file"}}}
    existing = {"/etc": "directory", "/etc/fleet-app": "directory"}
    directory_first = spec([{"source": "tree", "destination": "/etc/fleet-app"},
                            {"source": "conf/app", "destination": "/etc/fleet-app"}])
    assert error_of(directory_first, host(tree, existing)) == (
        f"The deployment failed because the application specification file calls for installing the file"
        f" {ARCHIVE}/conf/app, but a file with that name already exists at the location (/etc/fleet-app/app)."
        f" Update your AppSpec file or directory structure, and then try again.")
    file_first = spec([{"source": "conf/app", "destination": "/etc/fleet-app"},
                       {"source": "tree", "destination": "/etc/fleet-app"}])
    assert error_of(file_first, host(tree, existing)) == (
        f"The deployment failed because the application specification file includes an mkdir command more than"
        f" once for the same destination path (/etc/fleet-app/app) from ({ARCHIVE}/conf/app). Update the files"
        f" section of the AppSpec file, and then try again.")


@pytest.mark.parametrize("behavior", ["DISALLOW", "OVERWRITE", "RETAIN"])
def test_a_directory_to_make_where_the_host_has_a_file_is_refused_whatever_the_behavior(behavior):
    appspec = spec([{"source": "/", "destination": "/var/www/app"}])
    facts = host(SITE, {**EXISTING_WWW, "/var/www/app": "directory", "/var/www/app/css": "file"})
    assert error_of(appspec, facts, behavior=behavior) == (
        "The revision needs a directory at /var/www/app/css, but a file stands there. No file_exists_behavior"
        " replaces a file by a directory (OVERWRITE and RETAIN apply to files only); nothing was installed. Remove"
        " /var/www/app/css from the host, or change the destination in the files section of the AppSpec file.")
    nested = spec([{"source": "index.html", "destination": "/var/www/app/static"}])
    assert error_of(nested, host(SITE, {**EXISTING_WWW, "/var/www/app": "dangling"}), behavior=behavior).startswith(
        "The revision needs a directory at /var/www/app, but a symbolic link stands there.")


# Files: sources and symlinks

def test_a_missing_source_is_refused_with_the_agent_error_and_the_fix():
    message = error_of(spec([{"source": "nope.txt", "destination": "/srv"}]), host(SITE, {"/srv": "directory"}))
    assert message.startswith(f"No such file or directory @ rb_sysopen - {ARCHIVE}/nope.txt.")
    assert "correct the source or add it to the bundle" in message


def test_sources_that_climb_out_of_the_bundle_and_relative_destinations_are_refused():
    assert "points outside the revision bundle" in error_of(
        spec([{"source": "css", "destination": "/srv"}]) | {"files": [{"source": "../etc", "destination": "/srv"}]},
        host(SITE))
    assert error_of(spec([{"source": "css", "destination": "srv/app"}]), host(SITE)) == (
        "The destination 'srv/app' in the files section of the AppSpec file is not an absolute path. Write it from"
        " the root, e.g. /var/www/html.")


def test_a_symlink_to_a_file_is_copied_as_a_symlink_and_a_symlink_to_a_directory_is_followed():
    tree = {"app": {"current.conf": ("link", "v2.conf", "app/v2.conf"), "v2.conf": "file",
                    "shared": ("link", "../lib", "lib")},
            "lib": {"util.sh": "file"}}
    result = plan(spec([{"source": "app", "destination": "/srv/app"}]), host(tree, {"/srv": "directory"}))
    assert result.instructions == [
        MakeDirectory("/srv/app"),
        Copy(f"{ARCHIVE}/app/current.conf", "/srv/app/current.conf", "v2.conf"),
        Copy(f"{ARCHIVE}/app/v2.conf", "/srv/app/v2.conf"),
        MakeDirectory("/srv/app/shared"),
        Copy(f"{ARCHIVE}/app/shared/util.sh", "/srv/app/shared/util.sh"),
    ]


@pytest.mark.parametrize("source", ["app", "app/passwd", "out/x"])
def test_a_symlink_that_resolves_outside_the_bundle_is_refused_before_anything_is_written(source):
    tree = {"app": {"passwd": ("link", "/etc/passwd", None)}, "out": ("link", "../../..", None)}
    message = error_of(spec([{"source": source, "destination": "/srv/app"}]), host(tree, {"/srv": "directory"}))
    assert "outside the revision bundle" in message and "nothing was installed" in message


def test_a_symlink_to_a_directory_that_contains_it_is_refused():
    tree = {"app": {"again": ("link", "..", ""), "x": "file"}}
    message = error_of(spec([{"source": "app", "destination": "/srv/app"}]), host(tree, {"/srv": "directory"}))
    assert message.startswith("The revision's symbolic link app/again points to the bundle root, a directory that"
                              " contains it")


def test_special_files_in_the_bundle_are_refused():
    message = error_of(spec([{"source": "/", "destination": "/srv"}]), host({"pipe": "fifo"}, {"/srv": "directory"}))
    assert message.startswith("The revision's member pipe is not a regular file, directory or symbolic link")


# Permissions: what a permission applies to (docs/codedeploy-agent.md, 5.2)

PERMISSION_TREE = {"app": {"a.sh": "file", "b.txt": "file", "prefix": "file", "prefix_x": "file",
                           "sub": {"a.sh": "file", "deep": {"c.txt": "file"}}}}


def objects(permission: dict, existing: dict | None = None) -> list[str]:
    appspec = spec([{"source": "app", "destination": "/srv/app"}], [{"object": "/srv/app", "mode": "600",
                                                                     **permission}])
    result = plan(appspec, host(PERMISSION_TREE, {"/srv": "directory", **(existing or {})}))
    return [i.path.removeprefix("/srv/app/") for i in result.instructions if isinstance(i, ChangeMode)]


@pytest.mark.parametrize("permission, expected", [
    ({}, ["a.sh", "b.txt", "prefix", "prefix_x", "sub/a.sh", "sub/deep/c.txt", "sub", "sub/deep"]),
    ({"type": ["file"]}, ["a.sh", "b.txt", "prefix", "prefix_x", "sub/a.sh", "sub/deep/c.txt"]),
    ({"type": ["directory"]}, ["sub", "sub/deep"]),
    ({"pattern": "*.sh"}, ["a.sh"]),
    ({"pattern": "prefix*"}, ["prefix", "prefix_x"]),
    ({"pattern": "prefix"}, ["prefix"]),
    ({"pattern": "s*"}, ["sub"]),
    # except names direct children only: sub/a.sh and what is under sub stay matched
    ({"pattern": "**", "except": ["*.sh", "sub"]}, ["b.txt", "prefix", "prefix_x", "sub/a.sh", "sub/deep/c.txt",
                                                    "sub/deep"]),
    ({"pattern": "**", "except": ["c.txt"]}, ["a.sh", "b.txt", "prefix", "prefix_x", "sub/a.sh", "sub/deep/c.txt",
                                              "sub", "sub/deep"]),
    ({"pattern": "*", "except": ["prefix*"]}, ["a.sh", "b.txt", "sub"]),
    ({"pattern": "?.sh"}, []),
])
def test_permission_matching_table(permission, expected):
    assert objects(permission) == expected


def test_the_object_directory_itself_and_directories_that_already_existed_are_untouched():
    assert "/srv/app" not in objects({})
    assert objects({"type": ["directory"]}, {"/srv/app": "directory", "/srv/app/sub": "directory"}) == ["sub/deep"]


def test_permissions_on_a_parent_directory_reach_created_ancestors_but_not_existing_ones():
    appspec = spec([{"source": "index.html", "destination": "/var/www/app/static"}],
                   [{"object": "/var", "owner": "deploy"}])
    result = plan(appspec, host(SITE, EXISTING_WWW))
    assert [step for step in steps(result) if step[0] == "chown"] == [
        ("chown", "deploy", None, "/var/www/app/static/index.html"), ("chown", "deploy", None, "/var/www/app"),
        ("chown", "deploy", None, "/var/www/app/static")]


def test_a_permission_object_that_is_neither_copied_nor_a_directory_is_ignored():
    appspec = spec([{"source": "index.html", "destination": "/var/www"}], [{"object": "/var/www/nothing", "mode": "7"}])
    assert steps(plan(appspec, host(SITE, EXISTING_WWW))) == [("copy", "@/index.html", "/var/www/index.html")]


def test_a_copied_file_as_object_takes_its_permission_only_with_type_file():
    files = [{"source": "index.html", "destination": "/var/www"}]
    as_file = spec(files, [{"object": "/var/www/index.html", "mode": "0444", "type": ["file"]}])
    assert steps(plan(as_file, host(SITE, EXISTING_WWW)))[1:] == [("chmod", "0444", "/var/www/index.html")]
    as_directory = spec(files, [{"object": "/var/www/index.html", "mode": "0444", "type": ["directory"]}])
    assert len(plan(as_directory, host(SITE, EXISTING_WWW)).instructions) == 1


@pytest.mark.parametrize("permission, message", [
    ({"pattern": "*.html"},
     "The deployment failed because the application specification file includes an object (/var/www/index.html)"
     " with an invalid pattern (*.html), such as a pattern for a file applied to a directory. Correct the"
     " permissions section of the AppSpec file, and then try again."),
    ({"except": ["x"]},
     'The deployment failed because the except parameter for a pattern in the permissions section (["x"]) for'
     " the object named /var/www/index.html contains an invalid format. Update the AppSpec file, and then try"
     " again."),
    ({"acls": ["d:u:deploy:rwx"]},
     "The deployment failed because the -d parameter has been specified to apply an acl setting to a file. This"
     " parameter is supported for directories only. Update the AppSpec file, and then try again."),
])
def test_a_file_object_refuses_patterns_excepts_and_default_acls_with_the_agent_messages(permission, message):
    appspec = spec([{"source": "index.html", "destination": "/var/www"}],
                   [{"object": "/var/www/index.html", "type": ["file"], **permission}])
    assert error_of(appspec, host(SITE, EXISTING_WWW)) == message


def test_a_default_acl_matched_onto_a_file_under_a_directory_is_refused():
    appspec = spec([{"source": "css", "destination": "/var/www/app"}],
                   [{"object": "/var/www/app", "acls": ["d:u:deploy:rwx"]}])
    assert error_of(appspec, host(SITE, EXISTING_WWW)).startswith(
        "The deployment failed because the -d parameter has been specified")


def test_one_object_matched_by_two_entries_gives_the_agent_message():
    appspec = spec([{"source": "css", "destination": "/var/www/app"}],
                   [{"object": "/var/www/app", "mode": "644"}, {"object": "/var/www/app/site.css", "owner": "deploy",
                                                                "type": ["file"]}])
    assert error_of(appspec, host(SITE, EXISTING_WWW)) == (
        "The deployment failed because the permissions setting for (/var/www/app/site.css) is specified more than"
        " once in the application specification file. Update the files section of the AppSpec file, and then try"
        " again.")


def test_per_object_order_is_mode_acl_context_owner():
    appspec = spec([{"source": "index.html", "destination": "/var/www"}],
                   [{"object": "/var/www/index.html", "type": ["file"], "owner": "deploy", "group": "deploy",
                     "mode": "4750", "acls": ["u:deploy:7"], "context": {"type": "httpd_sys_content_t"}}])
    assert steps(plan(appspec, host(SITE, EXISTING_WWW)))[1:] == [
        ("chmod", "4750", "/var/www/index.html"),
        ("setfacl", ("user:deploy:rwx",), "/var/www/index.html"),
        ("semanage", "httpd_sys_content_t", "/var/www/index.html"),
        ("chown", "deploy", "deploy", "/var/www/index.html"),
    ]


# Permissions: what the host must have, checked before anything changes

@pytest.mark.parametrize("permission, facts, message", [
    ({"owner": "nobody-here"}, {}, "can't find user for nobody-here"),
    ({"owner": "4294967295"}, {}, "can't find user for 4294967295"),
    ({"group": "-1"}, {}, "can't find group for -1"),
    ({"group": "nogroup-here"}, {}, "can't find group for nogroup-here"),
    ({"acls": ["u:deploy:rw"]}, {"tools": frozenset()},
     "acls need setfacl on the host: install the acl package (the permissions section sets acls on"
     " /var/www/index.html)."),
    ({"context": {"type": "t"}}, {"tools": frozenset({"setfacl"})},
     "context needs semanage and restorecon on the host: install SELinux's policycoreutils-python-utils package"
     " (the permissions section sets an SELinux context on /var/www/index.html)."),
])
def test_missing_users_groups_and_tools_are_refused_at_planning(permission, facts, message):
    appspec = spec([{"source": "index.html", "destination": "/var/www"}],
                   [{"object": "/var/www/index.html", "type": ["file"], **permission}])
    assert error_of(appspec, host(SITE, EXISTING_WWW, **facts)) == message


def test_numeric_owners_and_groups_are_ids_as_with_chown():
    appspec = spec([{"source": "index.html", "destination": "/var/www"}],
                   [{"object": "/var/www/index.html", "type": ["file"], "owner": 33, "group": "0"}])
    assert steps(plan(appspec, host(SITE, EXISTING_WWW)))[1:] == [("chown", "33", "0", "/var/www/index.html")]


def test_the_install_json_is_the_agent_instruction_list():
    appspec = spec([{"source": "index.html", "destination": "/var/www/app"}],
                   [{"object": "/var/www/app", "mode": "0644", "owner": "deploy", "acls": ["g:deploy:r"],
                     "context": {"name": "system_u", "type": "t", "range": "s0"}, "type": ["file"]}])
    document = json.loads(instructions_json(plan(appspec, host(SITE, EXISTING_WWW))))
    assert document == {"instructions": [
        {"type": "mkdir", "directory": "/var/www/app"},
        {"type": "copy", "source": f"{ARCHIVE}/index.html", "destination": "/var/www/app/index.html"},
        {"type": "chmod", "mode": "0644", "file": "/var/www/app/index.html"},
        {"type": "setfacl", "acl": ["group:deploy:r--"], "file": "/var/www/app/index.html"},
        {"type": "semanage", "context": {"user": "system_u", "role": None, "type": "t", "range": "s0"},
         "file": "/var/www/app/index.html"},
        {"type": "chown", "owner": "deploy", "group": None, "file": "/var/www/app/index.html"},
    ]}


def test_the_diff_lists_what_goes_and_what_comes_with_permissions():
    appspec = spec([{"source": "css", "destination": "/var/www/app"}], [{"object": "/var/www/app", "mode": "0640"}])
    facts = host(SITE, {**EXISTING_WWW, "/var/www/old.html": "file"})
    diff = plan_diff(plan(appspec, facts, parse_cleanup("/var/www/old.html\n")), "dg")
    assert diff["before"] == "/var/www/old.html\n"
    assert diff["after"] == "/var/www/app/\n/var/www/app/site.css (mode=0640)\n"


# ACLs

@pytest.mark.parametrize("text, expected", [
    ("u:bob:7", "user:bob:rwx"),
    ("bob:rw", "user:bob:rw-"),
    ("user:bob:r-x", "user:bob:r-x"),
    ("g:web:5", "group:web:r-x"),
    ("m::rx", "mask::r-x"),
    ("m:6", "mask::rw-"),
    ("g:mask:r", "group:mask:r--"),
    ("d:u:bob:r", "default:user:bob:r--"),
    ("default:group:web:4", "default:group:web:r--"),
    ("d:bob:rwx", "default:user:bob:rwx"),
    ("d:o:0", "default:other::---"),
    ("d::5", "default:user::r-x"),
])
def test_acl_entries_in_setfacl_long_form(text, expected):
    assert parse_ace(text).text() == expected


def test_full_acl_matches_the_agent_test_expectation():
    assert ",".join(full_acl(["user:bob:rwx", "default:user:bob:rwx"], 0o100421)) == (
        "user:bob:rwx,default:user:bob:rwx,user::r--,group::-w-,other::--x,mask::-w-,default:user::r--,"
        "default:group::-w-,default:other::--x,default:mask::-w-")


def test_full_acl_adds_a_mask_only_for_named_entries_without_one():
    assert full_acl([], 0o644) == ["user::rw-", "group::r--", "other::r--"]
    assert full_acl(["u:deploy:rwx", "m::r"], 0o750) == [
        "user:deploy:rwx", "mask::r--", "user::rwx", "group::r-x", "other::---"]


def test_full_acl_default_mask_takes_the_listed_default_group():
    assert full_acl(["d:g::5", "d:g:web:7"], 0o700) == [
        "default:group::r-x", "default:group:web:rwx", "user::rwx", "group::---", "other::---",
        "default:user::rwx", "default:other::---", "default:mask::r-x"]


@pytest.mark.parametrize("name, pattern, matched", [
    ("prefix", "prefix*", True), ("prefix_x", "prefix*", True), ("prefix/x", "prefix*", False),
    ("a.sh", "*.sh", True), ("a.sh.bak", "*.sh", False), ("a.sh", "*", True), ("x", "*x*", True),
    ("a?", "a?", True), ("ab", "a?", False), ("a[1]", "a[1]", True), ("a1", "a[1]", False), ("", "*", True),
    ("abc", "a*c*", True), ("abcd", "a*c", False),
])
def test_simple_glob_only_star_is_special(name, pattern, matched):
    assert matches_simple_glob(name, pattern) is matched


# Applying, on a real directory tree

def test_apply_cleans_up_copies_records_and_points_last_successful(tmp_path):
    root = tmp_path / "root"
    layout = DeploymentRoot(str(root), "dg")
    archive = tmp_path / "root" / "dg" / "d-B" / "deployment-archive"
    (archive / "css").mkdir(parents=True)
    (archive / "css" / "site.css").write_text("body{}")
    os.chmod(archive / "css" / "site.css", 0o640)
    os.utime(archive / "css" / "site.css", (1_000_000, 1_000_000))
    (archive / "css" / "current.css").symlink_to("site.css")
    destination = tmp_path / "www"
    (destination / "app").mkdir(parents=True)
    (destination / "app" / "old.css").write_text("old")
    previous = f"{destination}/app\n{destination}/app/old.css\n"
    os.makedirs(layout.instructions_dir)
    with open(layout.cleanup_file, "w") as handle:
        handle.write(previous)

    appspec = spec([{"source": "css", "destination": f"{destination}/app"}],
                   [{"object": f"{destination}/app", "mode": "0600", "type": ["file"], "pattern": "site.css"}])
    cleanup = parse_cleanup(previous)
    facts, layouts = gather_facts(str(archive), appspec, cleanup)
    the_plan = plan_install(appspec, facts, cleanup, "DISALLOW", layouts)
    result = InstallResult()
    apply_install(the_plan, layout, "d-B", lambda argv: (0, "", ""), result)

    installed = destination / "app" / "site.css"
    assert result.removed == [f"{destination}/app/old.css", f"{destination}/app"]
    assert installed.read_text() == "body{}" and installed.stat().st_mtime == 1_000_000
    assert oct(installed.stat().st_mode & 0o7777) == "0o600"
    assert os.readlink(destination / "app" / "current.css") == "site.css"
    with open(layout.cleanup_file) as handle:
        assert handle.read().splitlines() == [f"{destination}/app", str(installed), f"{destination}/app/current.css"]
    with open(layout.last_successful_file) as handle:
        assert handle.read() == layout.deployment_dir("d-B")


def test_cleanup_keeps_a_directory_someone_else_filled(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "ours").write_text("x")
    (tmp_path / "app" / "theirs").write_text("y")
    (tmp_path / "link").symlink_to(tmp_path / "app")
    entries = parse_cleanup(f"{tmp_path}/app\n{tmp_path}/app/ours\n{tmp_path}/link\n{tmp_path}/gone\n")
    assert run_cleanup(entries, lambda argv: (0, "", "")) == [f"{tmp_path}/link", f"{tmp_path}/app/ours"]
    assert sorted(os.listdir(tmp_path)) == ["app"] and os.listdir(tmp_path / "app") == ["theirs"]


def test_permissions_never_follow_an_installed_symlink_out_of_the_tree(tmp_path):
    root = tmp_path / "root"
    layout = DeploymentRoot(str(root), "dg")
    archive = root / "dg" / "d-L" / "deployment-archive"
    (archive / "deep" / "a").mkdir(parents=True)
    (archive / "deep" / "a" / "page.html").write_text("page")
    victim = tmp_path / "victim"
    victim.write_text("secret")
    os.chmod(victim, 0o600)
    (archive / "deep" / "a" / "link").symlink_to(os.path.relpath(victim, tmp_path / "www"))
    os.makedirs(layout.instructions_dir)
    appspec = spec([{"source": "deep/a", "destination": f"{tmp_path}/www"}],
                   [{"object": f"{tmp_path}/www", "mode": "0666", "owner": "65534", "group": "65534",
                     "acls": ["u:65534:7"], "type": ["file"]}])
    facts, layouts = gather_facts(str(archive), appspec, [])
    the_plan = plan_install(appspec, facts, [], "DISALLOW", layouts)
    commands: list[list[str]] = []
    apply_install(the_plan, layout, "d-L", lambda argv: commands.append(argv) or (0, "", ""), InstallResult())
    link = tmp_path / "www" / "link"
    assert os.readlink(link) == os.path.relpath(victim, tmp_path / "www") and link.resolve() == victim
    assert victim.stat().st_mode & 0o7777 == 0o600 and victim.stat().st_uid == os.getuid()
    assert link.lstat().st_uid == 65534 and link.lstat().st_gid == 65534
    page = (tmp_path / "www" / "page.html").stat()
    assert page.st_mode & 0o7777 == 0o666 and page.st_uid == 65534
    assert [argv[-1] for argv in commands] == [f"{tmp_path}/www/page.html"]  # setfacl on the file, not the link


def test_a_name_with_a_newline_is_recorded_on_one_line_and_cleaned_up_exactly(tmp_path):
    # A hook may put such a name into the unpacked revision after DownloadBundle refused it in the bundle.
    layout = DeploymentRoot(str(tmp_path / "root"), "dg")
    archive = tmp_path / "root" / "dg" / "d-B" / "deployment-archive"
    hostile = archive / "nl" / "x\n" / "srv"
    hostile.mkdir(parents=True)
    (hostile / "victim2").write_text("planted")
    (archive / "back\\slash ").write_text("odd but fine")
    destination = tmp_path / "www"
    victim = tmp_path / "www" / "nl" / "x"
    appspec = spec([{"source": "/", "destination": str(destination)}])
    facts, layouts = gather_facts(str(archive), appspec, [])
    apply_install(plan_install(appspec, facts, [], "DISALLOW", layouts), layout, "d-B",
                  lambda argv: (0, "", ""), InstallResult())
    with open(layout.cleanup_file, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    # Each path on one line of its own; ordinary names as the agent writes them.
    assert f"{destination}/nl/x\\x0a/srv/victim2" in lines and f"{destination}/nl" in lines
    assert f"{destination}/back\\\\slash\\x20" in lines
    assert "/srv/victim2" not in lines and not any(line.endswith("/nl/x") for line in lines)
    victim.write_text("not the revision's")  # the path the old record's first half named
    with open(layout.cleanup_file, encoding="utf-8") as handle:
        removed = run_cleanup(parse_cleanup(handle.read()), lambda argv: (0, "", ""))
    assert f"{destination}/nl/x\n/srv/victim2" in removed and f"{destination}/back\\slash " in removed
    assert os.listdir(destination) == ["nl"] and os.listdir(destination / "nl") == ["x"]
    assert victim.read_text() == "not the revision's"


def test_cleanup_never_follows_a_symlink_put_in_place_of_a_directory_the_install_made(tmp_path):
    # The previous Install made app/conf and copied conf/settings; since then (a hook, or the application's user who
    # owns app) conf was replaced by a link to a directory elsewhere holding a file of the same name.
    victim = tmp_path / "etc"
    victim.mkdir()
    (victim / "settings").write_text("not the revision's")
    app = tmp_path / "www" / "app"
    app.mkdir(parents=True)
    (app / "conf").symlink_to(victim)
    previous = f"{app}/conf\n{app}/conf/settings\n{app}/index.html\n"
    root = tmp_path / "root"
    layout = DeploymentRoot(str(root), "dg")
    os.makedirs(layout.instructions_dir)
    (root / "deployment-instructions" / "dg-cleanup").write_text(previous)
    archive = root / "dg" / "d-B" / "deployment-archive"
    (archive / "conf").mkdir(parents=True)
    (archive / "conf" / "settings").write_text("new")
    appspec = spec([{"source": "conf", "destination": f"{app}/conf"}])
    cleanup = parse_cleanup(previous)
    facts, layouts = gather_facts(str(archive), appspec, cleanup)
    the_plan = plan_install(appspec, facts, cleanup, "DISALLOW", layouts)
    assert the_plan.removed == [f"{app}/conf"], "the link is removed, nothing through it"
    result = InstallResult()
    apply_install(the_plan, layout, "d-B", lambda argv: (0, "", ""), result)
    assert result.removed == [f"{app}/conf"]
    assert (victim / "settings").read_text() == "not the revision's"
    assert (app / "conf" / "settings").read_text() == "new" and not (app / "conf").is_symlink()
