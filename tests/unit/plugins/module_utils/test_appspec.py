# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AppSpec rules of the CodeDeploy agent (docs/codedeploy-agent.md, 1 and 5) and our differences.

Agent messages are written out in full here, not imported, so that a changed word in the code fails a test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ansible_collections.fleetops.codedeploy.plugins.module_utils import appspec as appspec_module
from ansible_collections.fleetops.codedeploy.plugins.module_utils import install_plan, yaml_subset
from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import (
    LIFECYCLE_EVENTS,
    RESERVED_EVENTS,
    AppSpecError,
    check_file_permission,
    find_appspec,
    load_appspec_text,
    normalise_appspec,
    parse_ace,
    parse_appspec,
    read_appspec_file,
)

HEADER = "version: 0.0\nos: linux\n"


def appspec(body: str = "", header: str = HEADER) -> str:
    return header + textwrap.dedent(body)


def parse_error(text: str, os_name: str = "linux", source_name: str = "appspec.yml") -> AppSpecError:
    with pytest.raises(AppSpecError) as caught:
        parse_appspec(text, os_name, source_name)
    return caught.value


def permission(body: str) -> dict:
    """The first normalised permission of an AppSpec whose permissions section is ``body``."""
    return parse_appspec(appspec("permissions:\n" + textwrap.indent(textwrap.dedent(body), "  ")))[0][
        "permissions"][0]


def permission_error(body: str) -> AppSpecError:
    return parse_error(appspec("permissions:\n" + textwrap.indent(textwrap.dedent(body), "  ")))


def script(body: str) -> dict:
    """The first normalised script of AfterInstall in an AppSpec whose AfterInstall entry is ``body``."""
    return parse_appspec(appspec("hooks:\n  AfterInstall:\n" + textwrap.indent(textwrap.dedent(body), "    ")))[0][
        "hooks"]["AfterInstall"][0]


def script_error(body: str) -> AppSpecError:
    return parse_error(appspec("hooks:\n  AfterInstall:\n" + textwrap.indent(textwrap.dedent(body), "    ")))


# The whole shape

FULL_APPSPEC = """\
version: 0.0
os: linux
files:
  - source: /
    destination: /var/www/html
  - source: config/app.conf
    destination: /etc/webapp
file_exists_behavior: OVERWRITE
permissions:
  - object: /var/www/html
    pattern: "*.html"
    except: [index.html]
    owner: www-data
    group: www-data
    mode: 0644
    type:
      - file
  - object: /var/www/html/cache
    mode: 0755
    acls:
      - u:deploy:rwx
      - d:g:web:r-x
    context:
      name: system_u
      type: httpd_sys_rw_content_t
      range: s0
    type: [directory]
hooks:
  ApplicationStop:
    - location: scripts/stop.sh
      timeout: 60
  BeforeInstall:
  AfterInstall:
    - location: " scripts/install_deps.sh "
      timeout: 300
      runas: " deploy "
    - location: scripts/migrate.sh
      sudo: true
  ApplicationStart:
    - location: scripts/start.sh
  ValidateService:
    - location: scripts/check.sh
      timeout: "30"
"""


def test_full_appspec_is_normalised_with_defaults_filled_in():
    result, warnings = parse_appspec(FULL_APPSPEC)
    assert warnings == []
    assert result == {
        "version": "0.0",
        "os": "linux",
        "file_exists_behavior": "OVERWRITE",
        "files": [
            {"source": "/", "destination": "/var/www/html"},
            {"source": "config/app.conf", "destination": "/etc/webapp"},
        ],
        "permissions": [
            {"object": "/var/www/html", "pattern": "*.html", "except": ["index.html"], "type": ["file"],
             "owner": "www-data", "group": "www-data", "mode": "0644", "acls": [], "context": None},
            {"object": "/var/www/html/cache", "pattern": "**", "except": [], "type": ["directory"],
             "owner": None, "group": None, "mode": "0755", "acls": ["u:deploy:rwx", "d:g:web:r-x"],
             "context": {"name": "system_u", "type": "httpd_sys_rw_content_t", "range": "s0"}},
        ],
        "hooks": {
            "ApplicationStop": [{"location": "scripts/stop.sh", "timeout": 60, "runas": None, "sudo": False}],
            "AfterInstall": [
                {"location": "scripts/install_deps.sh", "timeout": 300, "runas": "deploy", "sudo": False},
                {"location": "scripts/migrate.sh", "timeout": 3600, "runas": None, "sudo": True},
            ],
            "ApplicationStart": [{"location": "scripts/start.sh", "timeout": 3600, "runas": None, "sudo": False}],
            "ValidateService": [{"location": "scripts/check.sh", "timeout": 30, "runas": None, "sudo": False}],
        },
    }
    assert list(result["hooks"]) == ["ApplicationStop", "AfterInstall", "ApplicationStart", "ValidateService"]


def test_minimal_appspec_has_empty_sections():
    assert parse_appspec(HEADER) == ({
        "version": "0.0", "os": "linux", "file_exists_behavior": None, "files": [], "permissions": [], "hooks": {},
    }, [])


def test_normalised_appspec_passed_back_as_json_gives_the_same_appspec():
    # The module's advice for hosts without PyYAML: parse on the controller, pass the result as JSON content.
    result, _warnings = parse_appspec(FULL_APPSPEC)
    assert parse_appspec(json.dumps(result)) == (result, [])


def test_unknown_keys_are_ignored():
    result, _warnings = parse_appspec(appspec("""\
        colour: blue
        files:
          - {source: a, destination: /b, owner: nobody}
        hooks:
          AfterInstall:
            - {location: a.sh, retries: 3}
        """))
    assert result["files"] == [{"source": "a", "destination": "/b"}]
    assert result["hooks"]["AfterInstall"] == [{"location": "a.sh", "timeout": 3600, "runas": None, "sudo": False}]


def test_lifecycle_events_are_the_in_place_order():
    assert LIFECYCLE_EVENTS == (
        "BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop", "DownloadBundle",
        "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic",
        "AllowTraffic", "AfterAllowTraffic")
    assert set(RESERVED_EVENTS) <= set(LIFECYCLE_EVENTS)


# docs/codedeploy-agent.md 1.2: top-level keys

EMPTY = ("The deployment failed because the application specification file was empty. Make sure your AppSpec file"
         " defines at minimum the 'version' and 'os' properties.")


def version_message(value: str) -> str:
    return ("The deployment failed because an invalid version value ({}) was entered in the application specification"
            ' file. Make sure your AppSpec file specifies "0.0" as the version, and then try again.').format(value)


def os_message(value: str) -> str:
    return ("The deployment failed because the application specification file specifies an unsupported operating"
            ' system ({}). Specify either "linux" or "windows" in the os section of the AppSpec file, and then try'
            " again.").format(value)


def file_exists_behavior_message(value: str) -> str:
    return ("The deployment failed because an invalid file_exists_behavior value ({}) was entered in the"
            " application specification file. Make sure your AppSpec file specifies one of DISALLOW,OVERWRITE,RETAIN"
            " as the file_exists_behavior, and then try again.").format(value)


@pytest.mark.parametrize("text, message, key_path", [
    ("", EMPTY, ""),
    ("  \n\n", EMPTY, ""),
    ("# nothing but a comment\n", EMPTY, ""),
    ("os: linux\n", version_message(""), "version"),
    ("version: 1.0\nos: linux\n", version_message("1.0"), "version"),
    ("version: 0.1\nos: linux\n", version_message("0.1"), "version"),
    ("version: latest\nos: linux\n", version_message("latest"), "version"),
    ("version: false\nos: linux\n", version_message("false"), "version"),
    ("version: 0.0\n", os_message(""), "os"),
    ("version: 0.0\nos: Linux\n", os_message("Linux"), "os"),
    ("version: 0.0\nos: windows\n", os_message("windows"), "os"),
    ("version: 0.0\nos: ubuntu\n", os_message("ubuntu"), "os"),
    (HEADER + "file_exists_behavior: overwrite\n", file_exists_behavior_message("overwrite"), "file_exists_behavior"),
    (HEADER + "file_exists_behavior: REPLACE\n", file_exists_behavior_message("REPLACE"), "file_exists_behavior"),
])
def test_top_level_errors_use_the_agent_messages(text, message, key_path):
    error = parse_error(text)
    assert (error.message, error.key_path, error.error_code) == (message, key_path, "UnknownError")
    assert str(error) == message


@pytest.mark.parametrize("version", ["0.0", "0", "0.00", '"0.0"', "'0.0'", '"0"'])
def test_version_equal_to_zero_is_accepted_and_normalised(version):
    # Quoted "0.0" is a deliberate difference: the agent refuses it, its documentation asks for it.
    result, _warnings = parse_appspec("version: {}\nos: linux\n".format(version))
    assert result["version"] == "0.0"


@pytest.mark.parametrize("behavior", ["DISALLOW", "OVERWRITE", "RETAIN"])
def test_file_exists_behavior_values(behavior):
    result, _warnings = parse_appspec(HEADER + "file_exists_behavior: {}\n".format(behavior))
    assert result["file_exists_behavior"] == behavior


def test_windows_appspec_on_windows_host():
    result, _warnings = parse_appspec("version: 0.0\nos: windows\n", os_name="windows")
    assert result["os"] == "windows"
    assert parse_error(HEADER, os_name="windows").message == os_message("linux")


@pytest.mark.parametrize("text, message, key_path", [
    ("- version: 0.0\n", "The AppSpec file must be a mapping of keys such as version, os, files, permissions and"
     " hooks, but it is a list. For example: {version: 0.0, os: linux}", ""),
    (HEADER + "files:\n  source: /\n  destination: /srv\n",
     "files must be a list of source/destination entries, each starting with a dash, but it is a mapping. For"
     " example: files: [{source: /, destination: /var/www/html}]", "files"),
    (HEADER + "files:\n  - /srv\n",
     "files[0] must be a mapping with a source and a destination, but it is the string '/srv'. For example:"
     " - {source: /, destination: /var/www/html}", "files[0]"),
    (HEADER + "permissions:\n  object: /srv\n",
     "permissions must be a list of entries, each starting with a dash, but it is a mapping. For example:"
     " permissions: [{object: /var/www/html, owner: www-data, mode: '0644', type: [file]}]", "permissions"),
    (HEADER + "hooks:\n  - AfterInstall\n",
     "hooks must be a mapping of lifecycle event names to lists of scripts, but it is a list. For example:"
     " hooks: {AfterInstall: [{location: scripts/install.sh, timeout: 300}]}", "hooks"),
    (HEADER + "hooks:\n  AfterInstall:\n    location: a.sh\n",
     "hooks.AfterInstall must be a list of scripts, each entry starting with a dash, but it is a mapping. For"
     " example: AfterInstall: [{location: scripts/run.sh, timeout: 300}]", "hooks.AfterInstall"),
    (HEADER + "hooks:\n  AfterInstall:\n    - a.sh\n",
     "hooks.AfterInstall[0] must be a mapping with a location, but it is the string 'a.sh'. For example:"
     " - {location: scripts/run.sh, timeout: 300, runas: root}", "hooks.AfterInstall[0]"),
])
def test_wrong_shapes_where_the_agent_crashes_get_an_explanation(text, message, key_path):
    error = parse_error(text)
    assert (error.message, error.key_path) == (message, key_path)


# docs/codedeploy-agent.md 1.3: files

NO_SOURCE = ("The deployment failed because the application specification file specifies a destination file, but no"
             " source file. Update the files section of the AppSpec file, and then try again.")


def no_destination_message(source: str) -> str:
    return ("The deployment failed because the application specification file specifies only a source file ({})."
            " Add the name of the destination file to the files section of the AppSpec file, and then try again."
            ).format(source)


def escape_message(what: str, path: str, section: str) -> str:
    return ("The deployment failed because the application specification file specifies a {what} ({path}) that"
            " points outside the revision bundle. Paths in the {section} section are relative to the bundle root"
            " and cannot climb out of it with '..'. Update the {section} section of the AppSpec file, and then try"
            " again.").format(what=what, path=path, section=section)


@pytest.mark.parametrize("entries, message, key_path", [
    ("- destination: /srv", NO_SOURCE, "files[0].source"),
    ("- {source: null, destination: /srv}", NO_SOURCE, "files[0].source"),
    ("- {source: a, destination: /srv}\n- source: app", no_destination_message("app"), "files[1].destination"),
    ("- {source: ../etc, destination: /srv}", escape_message("source file", "../etc", "files"), "files[0].source"),
    ("- {source: /app/../../x, destination: /srv}",
     escape_message("source file", "/app/../../x", "files"), "files[0].source"),
    ("- {source: ./.., destination: /srv}", escape_message("source file", "./..", "files"), "files[0].source"),
])
def test_files_errors(entries, message, key_path):
    error = parse_error(appspec("files:\n" + textwrap.indent(entries, "  ")))
    assert (error.message, error.key_path) == (message, key_path)


@pytest.mark.parametrize("source", ["/", "./", ".", "", "app", "/app", "./app/../lib", "a/b/../../c"])
def test_files_sources_that_stay_in_the_bundle(source):
    result, _warnings = parse_appspec(appspec("files:\n  - {{source: '{}', destination: /srv}}\n".format(source)))
    assert result["files"] == [{"source": source, "destination": "/srv"}]


# docs/codedeploy-agent.md 5: permissions

NO_OBJECT = ("The deployment failed because a permission listed in the application specification file has no object"
             " value. Update the permissions section of the AppSpec file, and then try again.")
WINDOWS_PERMISSIONS = (
    "The deployment failed because the application specification file specifiles file permissions, but the"
    " deployment is targeting one or more Windows Server instances. Permissions are supported only for Amazon Linux,"
    " Ubuntu Server, and Red Hat Enterprise Linux (RHEL) instances. Update the permissions section of the AppSpec"
    " file, and then try again.")


def type_message(object_type: str) -> str:
    return ("The deployment failed because the application specification filespecifies a permission for an object"
            " type not supported for permissions ({}). Update the permissions section of the AppSpec file, and then"
            " try again.").format(object_type)


def mode_length_message(mode: str) -> str:
    return ("The deployment failed because the length of a permissions mode ({}) in the application specification"
            " file is invalid. Permissions modes must be between one and four characters long. Update the"
            " permissions section of the AppSpec file, and then try again.").format(mode)


def mode_character_message(mode: str, character: str) -> str:
    return ("The deployment failed because the permissions mode ({}) in the application specification file contains"
            " an invalid character ({}). Update the permissions section of the AppSpec file, and then try again."
            ).format(mode, character)


@pytest.mark.parametrize("entry, message, key_path", [
    ("- owner: root", NO_OBJECT, "permissions[0].object"),
    ("- {object: null, owner: root}", NO_OBJECT, "permissions[0].object"),
    ("- {object: '', owner: root}", NO_OBJECT, "permissions[0].object"),
    ("- {object: '  ', owner: root}", NO_OBJECT, "permissions[0].object"),
    ("- {object: /srv, type: [file, socket]}", type_message("socket"), "permissions[0].type[1]"),
    ("- {object: /srv, type: [File]}", type_message("File"), "permissions[0].type[0]"),
    ("- {object: /srv, type: file}",
     "permissions[0].type must be a list of object types, file and/or directory, but it is the string 'file'. For"
     " example: type: [file] or type: [file, directory]", "permissions[0].type"),
    ("- {object: /srv, except: '*.log'}",
     "permissions[0].except must be a list, but it is the string '*.log'. For example: except: ['*.log', '*.tmp']",
     "permissions[0].except"),
    ("- {object: /srv, acls: 'u:bob:rwx'}",
     "permissions[0].acls must be a list, but it is the string 'u:bob:rwx'. For example: acls: ['u:deploy:rwx',"
     " 'd:g:web:r-x']", "permissions[0].acls"),
])
def test_permission_errors(entry, message, key_path):
    error = permission_error(entry)
    assert (error.message, error.key_path) == (message, key_path)


def test_permission_defaults_and_stripped_object():
    assert permission("- object: ' /srv '\n") == {
        "object": "/srv", "pattern": "**", "except": [], "type": ["file", "directory"], "owner": None,
        "group": None, "mode": None, "acls": [], "context": None}


def test_permissions_on_windows_are_refused_after_the_object_check():
    windows = "version: 0.0\nos: windows\npermissions:\n  - {}\n"
    assert parse_error(windows.format("object: C:/app"), "windows").message == WINDOWS_PERMISSIONS
    assert parse_error(windows.format("owner: me"), "windows").message == NO_OBJECT


@pytest.mark.parametrize("written, mode", [
    ("7", "007"),
    ("12", "012"),
    ("644", "644"),
    ("'644'", "644"),
    ('"0644"', "0644"),
    ("0644", "0644"),  # unquoted: the agent applies 0420 (YAML 1.1 octal); deliberate difference
    ("0755", "0755"),  # unquoted: the agent fails with "invalid character (9)" on 493
    ("0777", "0777"),
    ("4755", "4755"),
    ("0", "000"),
])
def test_mode_is_the_digits_as_written_left_padded_to_three(written, mode):
    assert permission("- {{object: /srv, mode: {}}}\n".format(written))["mode"] == mode


@pytest.mark.parametrize("written, message", [
    ("12345", mode_length_message("12345")),
    ("'00644'", mode_length_message("00644")),
    ("u+x", mode_character_message("u+x", "u")),
    ("9", mode_character_message("009", "9")),
    ("0855", mode_character_message("0855", "8")),
    ("rwx", mode_character_message("rwx", "r")),
])
def test_mode_errors(written, message):
    error = permission_error("- {{object: /srv, mode: {}}}\n".format(written))
    assert (error.message, error.key_path) == (message, "permissions[0].mode")


def acl_invalid_message(ace: str) -> str:
    return ("The deployment failed because of a problem with the acls permission settings in the application"
            " specification file. Invalid acl entry ({}).").format(ace)


def acl_base_message(ace: str) -> str:
    return ("The deployment failed because of a problem with the acls permission settings in the application"
            " specification file. Use mode to set the base acl entry ({}). Update the permissions section of the"
            " AppSpec file, and then try again.").format(ace)


def acl_character_message(ace: str, character: str) -> str:
    return ("The deployment failed because the access control list (ACL) named {} in the application specification"
            " file contains an invalid character ({}). Correct the ACL in the hooks section of the AppSpec file, and"
            " then try again.").format(ace, character)


@pytest.mark.parametrize("ace", [
    "u:bob:rwx", "user:bob:7", "g:web:r-x", "group:web:5", "bob:rw", "u:bob:", "u:m:7", "d:u:bob:rw",
    "default:group:web:5", "d:bob:r", "d:u::rwx", "d:g::rx", "d:o::r", "d:m::rx", "m::rx", "mask::rwx", "m:7",
])
def test_valid_acl_entries(ace):
    assert permission("- {{object: /srv, acls: ['{}']}}\n".format(ace))["acls"] == [ace]


@pytest.mark.parametrize("ace, message", [
    ("rwx", acl_invalid_message("rwx")),
    ("a:b:c:d:e", acl_invalid_message("a:b:c:d:e")),
    ("x:u:bob:7", acl_invalid_message("x:u:bob:7")),
    ("d:d:bob:7", acl_invalid_message("d:d:bob:7")),
    ("z:bob:7", acl_invalid_message("z:bob:7")),
    ("o:bob:7", acl_invalid_message("o:bob:7")),
    ("m:bob:7", acl_invalid_message("m:bob:7")),
    ("m:m:7", acl_invalid_message("m:m:7")),
    ("::7", acl_invalid_message("::7")),
    ("u::7", acl_base_message("u::7")),
    ("g::rx", acl_base_message("g::rx")),
    ("o::r", acl_base_message("o::r")),
    ("o:7", acl_base_message("o:7")),
    ("u:bob:rwz", acl_character_message("u:bob:rwz", "z")),
    ("u:bob:8", acl_character_message("u:bob:8", "8")),
    ("u:bob:77", acl_character_message("u:bob:77", "7")),
])
def test_acl_entry_errors(ace, message):
    error = permission_error("- {{object: /srv, acls: ['u:ok:r', '{}']}}\n".format(ace))
    assert (error.message, error.key_path) == (message, "permissions[0].acls[1]")


def test_the_installer_reads_acl_entries_with_the_validator_grammar():
    assert install_plan.parse_ace is parse_ace  # one grammar for what is accepted and what setfacl is given
    assert [parse_ace(ace).text() for ace in ("u:bob:7", "d:g:web:5", "m:6", "g:mask:r")] == [
        "user:bob:rwx", "default:group:web:r-x", "mask::rw-", "group:mask:r--"]
    with pytest.raises(AppSpecError) as caught:
        parse_ace("u::7", ("permissions", 0, "acls", 0))
    assert (caught.value.message, caught.value.key_path) == (acl_base_message("u::7"), "permissions[0].acls[0]")


def context_type_message(inspected: str) -> str:
    return ("The deployment failed because the application specification file specifies an invalid context type ({})."
            " Update the permissions section of the AppSpec file, and then try again.").format(inspected)


ROLE = ("The deployment failed because the application specification file specifies a role, but roles are not"
        " supported. Remove the role from the AppSpec file, and then try again.")


def range_order_message(selinux_range: str) -> str:
    return ("The deployment failed because of a problem with the SELinux range specified ({}) for the context"
            " parameter in the permissions section of the application specification file. Make corrections in the"
            " permissions section of the AppSpec file, and then try again.").format(selinux_range)


def test_context_reads_the_user_from_name_and_ignores_user():
    # The documentation shows "user:", the agent reads "name".
    assert permission("- {object: /srv, context: {user: system_u, type: httpd_t}}\n")["context"] == {
        "name": None, "type": "httpd_t", "range": None}


@pytest.mark.parametrize("context, message, key_path", [
    ('{name: system_u, range: s0}', context_type_message('{"name"=>"system_u", "range"=>"s0"}'),
     "permissions[0].context"),
    ("{type: null}", context_type_message('{"type"=>nil}'), "permissions[0].context"),
    ("httpd_t", context_type_message('"httpd_t"'), "permissions[0].context"),
    ("{type: httpd_t, role: object_r}", ROLE, "permissions[0].context.role"),
])
def test_context_errors(context, message, key_path):
    error = permission_error("- {{object: /srv, context: {}}}\n".format(context))
    assert (error.message, error.key_path) == (message, key_path)


@pytest.mark.parametrize("selinux_range", [
    "s0", "s15", "s0-s0", "s0-s15", "s0:c0", "s0:c0.c1023", "s0-s1:c1,c3.c5,c7", "s0:c1,",
])
def test_valid_selinux_ranges(selinux_range):
    context = permission("- {{object: /srv, context: {{type: t, range: '{}'}}}}\n".format(selinux_range))["context"]
    assert context["range"] == selinux_range


@pytest.mark.parametrize("selinux_range, message", [
    ("", "invalid range part "),
    ("s0:", "invalid range part s0:"),
    (":c1", "invalid range part :c1"),
    ("s0-", "invalid range part s0-"),
    ("s0:c1.", "invalid range part c1."),
    ("x0", "invalid sensitivity x0"),
    ("s", "invalid sensitivity s"),
    ("sa", "invalid sensitivity sa"),
    ("s0-s1-s2", "invalid sensitivity s1-s2"),
    ("s1-s0", range_order_message("s1-s0")),
    ("s0:c1024", "invalid category c1024"),
    ("s0:x1", "invalid category x1"),
    ("s0:,c1", "invalid category "),
    ("s0:c5.c2", "invalid category range c5.c2"),
    ("s0:c1,c1", "duplicate categories"),
    ("s0:c0.c3,c2", "duplicate categories"),
])
def test_selinux_range_errors(selinux_range, message):
    error = permission_error("- {{object: /srv, context: {{type: t, range: '{}'}}}}\n".format(selinux_range))
    assert (error.message, error.key_path) == (message, "permissions[0].context.range")


# Checks the Install makes once it knows the object is a file it copies

def test_file_permission_checks():
    file_permission = permission("- {object: /srv/a.conf, pattern: '*.conf'}\n")
    with pytest.raises(AppSpecError) as caught:
        check_file_permission(file_permission, ("permissions", 0))
    assert caught.value.message == (
        "The deployment failed because the application specification file includes an object (/srv/a.conf) with an"
        " invalid pattern (*.conf), such as a pattern for a file applied to a directory. Correct the permissions"
        " section of the AppSpec file, and then try again.")
    assert caught.value.key_path == "permissions[0]"

    with pytest.raises(AppSpecError) as caught:
        check_file_permission(permission("- {object: /srv/a.conf, except: ['*.log', x]}\n"))
    assert caught.value.message == (
        'The deployment failed because the except parameter for a pattern in the permissions section (["*.log", "x"])'
        " for the object named /srv/a.conf contains an invalid format. Update the AppSpec file, and then try again.")

    with pytest.raises(AppSpecError) as caught:
        check_file_permission(permission("- {object: /srv/a.conf, acls: ['u:bob:r', 'd:u:bob:r']}\n"))
    assert caught.value.message == (
        "The deployment failed because the -d parameter has been specified to apply an acl setting to a file. This"
        " parameter is supported for directories only. Update the AppSpec file, and then try again.")


def test_file_permission_checks_skip_directory_only_permissions():
    check_file_permission(permission("- {object: /srv, pattern: '*.conf', acls: ['d:u:bob:r'], type: [directory]}\n"))
    check_file_permission(permission("- {object: /srv/a.conf, acls: ['u:bob:r']}\n"))


# docs/codedeploy-agent.md 1.4: hooks

NO_LOCATION = ("The deployment failed because the application specification file specifies a script with no location"
               " value. Specify the location in the hooks section of the AppSpec file, and then try again.")
INVALID_TIMEOUT = ("The deployment failed because an invalid timeout value was provided for a script in the"
                   " application specification file. Make corrections in the hooks section of the AppSpec file, and"
                   " then try again.")


@pytest.mark.parametrize("entry, message, key_path", [
    ("- timeout: 30", NO_LOCATION, "hooks.AfterInstall[0].location"),
    ("- location:", NO_LOCATION, "hooks.AfterInstall[0].location"),
    ("- location: ''", NO_LOCATION, "hooks.AfterInstall[0].location"),
    ("- location: '   '", NO_LOCATION, "hooks.AfterInstall[0].location"),
    ("- location: a.sh\n- runas: root", NO_LOCATION, "hooks.AfterInstall[1].location"),
    ("- location: ../x.sh", escape_message("hook script location", "../x.sh", "hooks"),
     "hooks.AfterInstall[0].location"),
    ("- location: scripts/../../x.sh", escape_message("hook script location", "scripts/../../x.sh", "hooks"),
     "hooks.AfterInstall[0].location"),
])
def test_script_location_errors(entry, message, key_path):
    error = script_error(entry)
    assert (error.message, error.key_path) == (message, key_path)


@pytest.mark.parametrize("written, location", [
    ("scripts/start.sh", "scripts/start.sh"),
    ("'  scripts/start.sh  '", "scripts/start.sh"),
    ("/scripts/start.sh", "/scripts/start.sh"),  # still inside the bundle, as with the agent
    ("./scripts/start.sh", "./scripts/start.sh"),
    ("scripts/../start.sh", "scripts/../start.sh"),
])
def test_script_location_is_stripped_and_stays_in_the_bundle(written, location):
    assert script("- location: {}\n".format(written))["location"] == location


@pytest.mark.parametrize("written, seconds", [
    ("30", 30), ("'30'", 30), ("1.9", 1), ("3600", 3600), ("'45s'", 45), ("' 12'", 12), ("'1_000'", 1000),
    ("null", 3600),
])
def test_timeout_is_converted_like_ruby_to_i(written, seconds):
    assert script("- {{location: a.sh, timeout: {}}}\n".format(written))["timeout"] == seconds


@pytest.mark.parametrize("written", ["0", "-5", "0.5", "abc", "''", "true", ".inf", "[30]"])
def test_invalid_timeouts(written):
    error = script_error("- {{location: a.sh, timeout: {}}}\n".format(written))
    assert (error.message, error.key_path) == (INVALID_TIMEOUT, "hooks.AfterInstall[0].timeout")


@pytest.mark.parametrize("entry, runas, sudo", [
    ("{location: a.sh}", None, False),
    ("{location: a.sh, runas: ' deploy '}", "deploy", False),
    ("{location: a.sh, sudo: true}", None, True),
    ("{location: a.sh, sudo: false}", None, False),
    ("{location: a.sh, runas: web, sudo: yes}", "web", True),
    ("{location: a.sh, sudo: 0}", None, True),  # Ruby truthiness, as in the agent
])
def test_runas_and_sudo(entry, runas, sudo):
    result = script("- {}\n".format(entry))
    assert (result["runas"], result["sudo"]) == (runas, sudo)


def test_events_without_a_value_are_ignored_and_empty_lists_kept():
    # As the agent parses them: an empty list stays an event with no scripts, and warns of nothing.
    result, warnings = parse_appspec(appspec("""\
        hooks:
          BeforeInstall:
          AfterInstall: []
          Install: []
          ApplicationStart:
            - location: start.sh
        """))
    assert result["hooks"] == {"AfterInstall": [], "Install": [], "ApplicationStart": [
        {"location": "start.sh", "timeout": 3600, "runas": None, "sudo": False}]}
    assert warnings == []


@pytest.mark.parametrize("event", RESERVED_EVENTS)
def test_scripts_under_reserved_events_are_a_warning(event):
    result, warnings = parse_appspec(appspec("hooks:\n  {}:\n    - location: x.sh\n".format(event)))
    assert result["hooks"][event] == [{"location": "x.sh", "timeout": 3600, "runas": None, "sudo": False}]
    assert warnings == [
        "hooks.{0}: the scripts listed under {0} never run. DownloadBundle and Install are carried out by the"
        " deployment itself, BlockTraffic and AllowTraffic by the load balancer; none of them runs scripts."
        .format(event)]


@pytest.mark.parametrize("event, warning", [
    ("AfterInstal", "hooks.AfterInstal: AfterInstal is not a lifecycle event, so the scripts listed under it never"
                    " run. Did you mean AfterInstall?"),
    ("Deploy", "hooks.Deploy: Deploy is not a lifecycle event, so the scripts listed under it never run."),
])
def test_scripts_under_unknown_events_are_a_warning(event, warning):
    _appspec, warnings = parse_appspec(appspec("hooks:\n  {}:\n    - location: x.sh\n".format(event)))
    assert warnings == [warning]


# YAML and JSON

@pytest.mark.parametrize("text, line, column, problem", [
    (HEADER + "files:\n\t- source: /\n", 4, 1,
     "found character '\\t' that cannot start any token (while scanning for the next token). YAML is indented with"
     " spaces; tabs are not allowed."),
    (HEADER + "hooks:\n  AfterInstall: [\n", 5, 1,
     "expected the node content, but found '<stream end>' (while parsing a flow node)."),
    (HEADER + "files:\n  - source: /\n   destination: /srv\n", 5, 4,
     "expected <block end>, but found '<block mapping start>' (while parsing a block collection)."),
    (HEADER + "defaults: &script {location: a.sh}\nhooks:\n  AfterInstall:\n    - *script\n", 6, 7,
     "Unknown alias: script. The CodeDeploy agent does not follow YAML aliases such as *script; write the value out"
     " in full."),
    (HEADER + "base: &base {location: a.sh}\nhooks:\n  AfterInstall:\n    - <<: *base\n      timeout: 5\n", 6, 11,
     "Unknown alias: base. The CodeDeploy agent does not follow YAML aliases such as *base; write the value out in"
     " full."),
])
def test_yaml_errors_name_the_file_line_and_column(text, line, column, problem):
    error = parse_error(text, source_name="revisions/web/appspec.yml")
    assert (error.line, error.column, error.key_path) == (line, column, "")
    assert error.message == "Cannot read revisions/web/appspec.yml at line {}, column {}: {}".format(
        line, column, problem)


def test_an_anchor_without_alias_is_accepted():
    result, _warnings = parse_appspec(appspec("files:\n  - &root {source: /, destination: /srv}\n"))
    assert result["files"] == [{"source": "/", "destination": "/srv"}]


def test_content_errors_carry_the_line_of_the_key():
    error = parse_error(appspec("""\
        permissions:
          - object: /srv
            mode: 644
          - object: /etc
            owner: root
            mode: u+x
        """))
    assert (error.key_path, error.line, error.column) == ("permissions[1].mode", 8, 11)


def test_a_missing_key_points_at_its_entry():
    error = parse_error(appspec("hooks:\n  AfterInstall:\n    - location: a.sh\n    - timeout: 5\n"))
    assert (error.key_path, error.line, error.column) == ("hooks.AfterInstall[1].location", 6, 7)


def test_json_appspec():
    text = '{\n\t"version": 0.0,\n\t"os": "linux",\n\t"permissions": [{"object": "/srv", "mode": 644}],\n' \
           '\t"hooks": {"AfterInstall": [{"location": "a.sh", "timeout": "30"}]}\n}\n'
    result, _warnings = parse_appspec(text)
    assert result["permissions"][0]["mode"] == "644"
    assert result["hooks"]["AfterInstall"][0]["timeout"] == 30


def test_json_errors_have_the_agent_message():
    error = parse_error('{"version": "1.0", "os": "linux"}')
    assert (error.message, error.key_path) == (version_message("1.0"), "version")


def test_load_keeps_the_raw_document():
    assert load_appspec_text("version: 0.0\nos: linux\npermissions: [{object: /a, mode: 0644}]\n") == {
        "version": 0.0, "os": "linux", "permissions": [{"object": "/a", "mode": "0644"}]}
    assert load_appspec_text("") is None


def test_normalise_takes_a_loaded_document():
    result, _warnings = normalise_appspec({"version": 0, "os": "linux", "permissions": [{"object": "/a", "mode": 7}]})
    assert (result["version"], result["permissions"][0]["mode"]) == ("0.0", "007")
    with pytest.raises(AppSpecError) as caught:
        normalise_appspec(None)
    assert caught.value.message == EMPTY


def test_without_pyyaml_json_and_yaml_load_with_the_same_result():
    # A real interpreter without site-packages: what a fleet host without PyYAML runs.
    program = textwrap.dedent("""\
        import json, sys
        from ansible_collections.fleetops.codedeploy.plugins.module_utils import appspec
        print(json.dumps(appspec.parse_appspec(sys.stdin.read())[0], sort_keys=True))
        print("yaml" in sys.modules)
        """)
    collections = Path(appspec_module.__file__).parents[5]  # .../ansible_collections/fleetops/codedeploy/plugins/...
    run = subprocess.run([sys.executable, "-S", "-c", program], input=FULL_APPSPEC, capture_output=True, text=True,
                         check=True, env=dict(os.environ, PYTHONPATH=str(collections)))
    spec, pyyaml_loaded = run.stdout.splitlines()
    assert json.loads(spec) == parse_appspec(FULL_APPSPEC)[0]
    assert pyyaml_loaded == "False"


# docs/codedeploy-agent.md 1.5: finding the file

def test_find_appspec_prefers_the_given_name_then_yaml_then_yml(tmp_path: Path):
    for name in ("appspec.yml", "appspec.yaml", "custom.yml"):
        (tmp_path / name).write_text(HEADER)
    assert find_appspec(str(tmp_path), "custom.yml") == str(tmp_path / "custom.yml")
    assert find_appspec(str(tmp_path), "missing.yml") == str(tmp_path / "appspec.yaml")
    assert find_appspec(str(tmp_path)) == str(tmp_path / "appspec.yml")
    (tmp_path / "appspec.yml").unlink()
    assert find_appspec(str(tmp_path)) == str(tmp_path / "appspec.yaml")


def test_find_appspec_without_a_file_uses_the_agent_message(tmp_path: Path):
    (tmp_path / "appspec.yml").mkdir()  # a directory is not an AppSpec file
    with pytest.raises(AppSpecError) as caught:
        find_appspec(str(tmp_path))
    assert caught.value.message == (
        'The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at revision-relative'
        ' path "appspec.yml". The revision was unpacked to directory "{0}", and the AppSpec file was expected but not'
        ' found at path "{0}/appspec.yml". Consult the AWS CodeDeploy Appspec documentation for more information at'
        " http://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html").format(tmp_path)


# Files from the wild, read by both loaders: PyYAML on the controller, yaml_subset on hosts without PyYAML

HOST_PROGRAM = textwrap.dedent("""\
    import json, sys
    from ansible_collections.fleetops.codedeploy.plugins.module_utils import appspec
    request = json.load(sys.stdin)
    try:
        result, warnings = appspec.parse_appspec(request["text"], "linux", request["source_name"])
        print(json.dumps({"appspec": result, "warnings": warnings}))
    except appspec.AppSpecError as error:
        print(json.dumps({"error": [error.message, error.key_path, error.line, error.column]}))
    print("yaml" in sys.modules)
    """)


def parse_on_controller(text: str, source_name: str = "appspec.yml") -> dict:
    try:
        result, warnings = parse_appspec(text, "linux", source_name)
    except AppSpecError as error:
        return {"error": [error.message, error.key_path, error.line, error.column]}
    return json.loads(json.dumps({"appspec": result, "warnings": warnings}))


def parse_on_host(text: str, source_name: str = "appspec.yml") -> dict:
    """parse_appspec in a real interpreter without site-packages, as a fleet host without PyYAML runs it."""
    collections = Path(appspec_module.__file__).parents[5]
    run = subprocess.run([sys.executable, "-S", "-c", HOST_PROGRAM], capture_output=True, text=True, check=True,
                         input=json.dumps({"text": text, "source_name": source_name}),
                         env=dict(os.environ, PYTHONPATH=str(collections)))
    outcome, pyyaml_loaded = run.stdout.splitlines()
    assert pyyaml_loaded == "False"
    return json.loads(outcome)


@pytest.fixture(params=[parse_on_controller, parse_on_host], ids=["controller-pyyaml", "host-yaml_subset"])
def parse(request):
    return request.param


def on_host(parse) -> bool:
    return parse is parse_on_host


CLOUDFORMATION_LEFTOVERS = """\
# Deploys the API behind the load balancer; the resources section is read by our stack tooling, not CodeDeploy.
version: 0.0
os: linux
files:
  - source: /build
    destination: /srv/api
resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: !Ref ApiTaskDefinition
        LoadBalancerInfo:
          ContainerName: !GetAtt [ApiContainer, Name]
          ContainerPort: !Sub "${ApiPort}"
        Tags: !If
          - IsProduction
          - [{Key: stage, Value: prod}]
          - !Ref AWS::NoValue
hooks:
  ApplicationStart:
    - location: scripts/start.sh
      timeout: !Ref 300
      runas: !Sub deploy
"""


def test_a_local_tag_under_a_key_the_agent_ignores_is_read_as_plain_data(parse):
    outcome = parse(CLOUDFORMATION_LEFTOVERS)
    assert outcome["appspec"]["files"] == [{"source": "/build", "destination": "/srv/api"}]
    # A tagged value reads as if untagged, as the agent's safe load reads it.
    assert outcome["appspec"]["hooks"] == {"ApplicationStart": [
        {"location": "scripts/start.sh", "timeout": 300, "runas": "deploy", "sudo": False}]}
    assert outcome["warnings"] == []
    assert load_appspec_text(CLOUDFORMATION_LEFTOVERS)["resources"][0]["TargetService"]["Properties"] == {
        "TaskDefinition": "ApiTaskDefinition", "LoadBalancerInfo": {
            "ContainerName": ["ApiContainer", "Name"], "ContainerPort": "${ApiPort}"},
        "Tags": ["IsProduction", [{"Key": "stage", "Value": "prod"}], "AWS::NoValue"]}


BOM_WARNING = (
    "revision/appspec.yml starts with a UTF-8 byte order mark. CodeDeploy's agent reads such a file as if it held"
    ' only its first key, and refuses it (for example "unsupported operating system ()"); it is read whole here.'
    " Save it without the byte order mark if it must also deploy with the agent.")
SAVED_BY_A_WINDOWS_EDITOR = ("\ufeffversion: 0.0\r\nos: linux\r\nfiles:\r\n  - source: /\r\n"
                             "    destination: /srv/web\r\n")


@pytest.mark.parametrize("text", [
    SAVED_BY_A_WINDOWS_EDITOR,
    '\ufeff{"version": 0.0, "os": "linux", "files": [{"source": "/", "destination": "/srv/web"}]}',
], ids=["yaml", "json"])
def test_a_byte_order_mark_is_read_whole_with_a_warning(parse, text):
    outcome = parse(text, "revision/appspec.yml")
    assert (outcome["appspec"]["os"], outcome["appspec"]["files"]) == (
        "linux", [{"source": "/", "destination": "/srv/web"}])
    assert outcome["warnings"] == [BOM_WARNING]


@pytest.mark.parametrize("text, message, key_path, line", [
    (HEADER + "files:\n  source: /\n  destination: /srv\n",
     "files must be a list of source/destination entries, each starting with a dash, but it is a mapping. For"
     " example: files: [{source: /, destination: /var/www/html}]", "files", 4),
    (HEADER + "files:\n  -\n  - source: /\n    destination: /srv\n",
     "files[0] must be a mapping with a source and a destination, but it is empty. For example: - {source: /,"
     " destination: /var/www/html}", "files[0]", 4),
    (HEADER + "permissions: /srv\n",
     "permissions must be a list of entries, each starting with a dash, but it is the string '/srv'. For example:"
     " permissions: [{object: /var/www/html, owner: www-data, mode: '0644', type: [file]}]", "permissions", 3),
    (HEADER + "hooks:\n  AfterInstall:\n    location: a.sh\n",
     "hooks.AfterInstall must be a list of scripts, each entry starting with a dash, but it is a mapping. For"
     " example: AfterInstall: [{location: scripts/run.sh, timeout: 300}]", "hooks.AfterInstall", 5),
], ids=["files mapping", "null files entry", "permissions string", "event mapping"])
def test_where_the_agent_crashes_both_loaders_explain(parse, text, message, key_path, line):
    # The agent raises a Ruby TypeError or NoMethodError here; both loaders give the same explanation.
    outcome = parse(text)
    assert outcome["error"] == [message, key_path, None if on_host(parse) else line, outcome["error"][3]]


def test_dates_are_read_with_a_warning(parse):
    text = HEADER + textwrap.dedent("""\
        metadata:
          released: 2024-05-01
          built: 2024-05-01 10:30:00
        hooks:
          ApplicationStart:
            - location: start.sh
              runas: 2024-05-02
        """)
    outcome = parse(text)
    assert outcome["appspec"]["hooks"]["ApplicationStart"][0]["runas"] == "2024-05-02"
    places = ("metadata.released, metadata.built, hooks.ApplicationStart[0].runas" if on_host(parse) else
              "metadata.released (line 4), metadata.built (line 5), hooks.ApplicationStart[0].runas (line 9)")
    assert outcome["warnings"] == [
        f"appspec.yml holds YAML dates or timestamps at {places}. CodeDeploy's agent refuses an AppSpec holding"
        ' any ("Tried to load unspecified class: Date"), even under a key it does not read; they are read here.'
        " Quote them if the file must also deploy with the agent."]


def test_an_empty_event_list_is_kept_as_the_agent_keeps_it(parse):
    outcome = parse(HEADER + "hooks:\n  BeforeInstall: []\n  AfterInstall:\n  ApplicationStart:\n"
                             "    - location: start.sh\n")
    assert outcome["appspec"]["hooks"] == {"BeforeInstall": [], "ApplicationStart": [
        {"location": "start.sh", "timeout": 3600, "runas": None, "sudo": False}]}
    assert outcome["warnings"] == []


@pytest.mark.parametrize("tag", ["!ruby/object:Deploy", "!ruby/sym"])
def test_a_ruby_class_tag_is_refused_as_the_agent_refuses_it(parse, tag):
    assert parse(HEADER + "x:\n  - " + tag + " name\n")["error"] == [
        f"Cannot read appspec.yml at line 4, column 5: the YAML tag {tag} names a Ruby class, which the CodeDeploy"
        ' agent refuses to load ("Tried to load unspecified class"); remove the tag.', "", 4, 5]


def test_aliases_are_refused_with_the_agent_meaning(parse):
    text = HEADER + "stop: &stop\n  - location: stop.sh\nhooks:\n  ApplicationStop: *stop\n"
    assert parse(text)["error"] == [
        "Cannot read appspec.yml at line 6, column 20: Unknown alias: stop. The CodeDeploy agent does not follow"
        " YAML aliases such as *stop; write the value out in full.", "", 6, 20]


# Hostile input: bounded, refused with the place of the fault

TIMEOUT_ABOVE_MAXIMUM = (
    "hooks.AfterInstall[0].timeout is {} seconds, more than the 3600 seconds CodeDeploy allows one lifecycle event:"
    " the event fails at 3600 seconds whatever its scripts' timeouts. Set timeout to 3600 or less (split longer work"
    " over several events, or start it in the background).")


@pytest.mark.parametrize("written, seconds", [
    ("3601", "3601"), ("99999", "99999"), ("9" * 400, "9" * 400), ("'" + "9" * 5000 + "'", "9" * 20),
    ("1.0e+300", str(int(1e300))),
])
def test_timeouts_above_the_event_limit_are_refused(parse, written, seconds):
    text = appspec("hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: {}\n".format(written))
    message, key_path, line, _column = parse(text, "web/appspec.yml")["error"]
    where = "web/appspec.yml" if on_host(parse) else "web/appspec.yml, line 6"
    assert (message, key_path, line) == (where + ": " + TIMEOUT_ABOVE_MAXIMUM.format(seconds),
                                         "hooks.AfterInstall[0].timeout", None if on_host(parse) else 6)


DEEP_BLOCK = HEADER + "x:\n" + "".join(" " * depth + "- \n" for depth in range(1, 200))


@pytest.mark.parametrize("text, line, column", [
    ('{"version": 0.0, "x": ' + "[" * 5000 + "]" * 5000 + "}", 1, 86),
    ('{"version": 0.0,\n "x": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}", 2, 385),
    (HEADER + "x: " + "[" * 5000 + "]" * 5000 + "\n", 3, 67),
    (DEEP_BLOCK, 67, 65),
], ids=["json lists", "json mappings", "yaml flow", "yaml block"])
def test_deep_nesting_is_an_error_with_its_place(parse, text, line, column):
    assert parse(text)["error"] == [
        f"Cannot read appspec.yml at line {line}, column {column}: collections are nested more than 64 levels deep.",
        "", line, column]


@pytest.mark.parametrize("text, line, column", [
    (HEADER + "x: " + "7" * 4301 + "\n", 3, 4),
    (HEADER + "x:\n  - 1" + ":30" * 2150 + "\n", 4, 5),
    ('{"version": 0.0,\n  "os": "linux", "x": -' + "7" * 4301 + "}", 2, 23),
], ids=["yaml", "yaml sexagesimal", "json"])
def test_integers_of_more_than_4300_digits_are_an_error_with_their_place(parse, text, line, column):
    message, key_path, error_line, error_column = parse(text)["error"]
    assert message.startswith(f"Cannot read appspec.yml at line {line}, column {column}: the integer ")
    assert "digits; more than 4300 is not a number an AppSpec uses (quote it if it is text)." in message
    assert (key_path, error_line, error_column) == ("", line, column)


def test_an_integer_of_4300_digits_still_loads(parse):
    outcome = parse(HEADER + "x: " + "7" * 4300 + "\ny: 1" + ":30" * 2149 + "\n")
    assert outcome["appspec"]["version"] == "0.0"


def test_the_size_limit_applies_to_given_text_and_files(tmp_path: Path):
    text = HEADER + "# padding\n" * (1024 * 1024 // 10)
    error = parse_error(text, source_name="web/appspec.yml")
    assert error.message == (
        f"Cannot read web/appspec.yml: it is {len(text)} bytes, and an AppSpec file is at most 1048576 bytes (1 MiB;"
        " real ones are a few kilobytes). Check that this file is the revision's AppSpec, and move anything else out"
        " of it.")
    big = tmp_path / "appspec.yml"
    with big.open("w") as handle:  # 100 MB: refused by its size, never read
        handle.write(HEADER)
        handle.truncate(100 * 1024 * 1024)
    with pytest.raises(AppSpecError) as caught:
        read_appspec_file(str(tmp_path))
    assert caught.value.message.startswith(f"Cannot read {big}: it is 104857600 bytes, and an AppSpec file is at most")
    parse_appspec(HEADER + "# padding\n" * (1024 * 1024 // 10 - 3))  # just under the limit


@pytest.mark.parametrize("text", [
    "a: !Ref x\n", "a: !Ref\nb: 1\n", "a: !Sub |\n  hi\n", "a: !If\n  - x\n  - y\n", "- !t k: v\n  k2: w\n",
    "a: [!Ref b, !GetAtt [c, d]]\n", "{a: !t , b: &x 1}", "&a key: value\n", "a: &x !t 5\n", "a: !t\n- x\n",
    "!t\nk: v\n", "--- !t\nk: v\n", "a: !Ref 2024-01-01\n", "a: !Ref 'x'\n", "a: !t yes\n", "mode: !t 0644\n",
    "a: !Tag # c\n  b: 1\n", "a: [&x 1, &y]\n", "- &a\n  k: v\n", "a: ! 5\n", "a: !t:x/y 5\n",
])
def test_both_loaders_read_tags_and_anchors_alike(text):
    assert repr(load_appspec_text(text)) == repr(yaml_subset.load(text, raw_scalar_keys=frozenset({"mode"})))


@pytest.mark.parametrize("text", [
    appspec('hooks:\n  ValidateService:\n    - location: "scripts/v\\udc80.sh"\n'),
    '{"version": 0.0, "os": "linux", "hooks": {"ValidateService": [{"location": "scripts/v\\udc80.sh"}]}}',
])
def test_a_lone_surrogate_escape_is_refused_where_it_is_written(text):
    # No module can return it: ansible-core refuses a result holding one, and the event's diagnostics are lost.
    with pytest.raises(AppSpecError) as caught:
        parse_appspec(text)
    assert "holds the escape \\udc80, which is not a Unicode character" in str(caught.value)
    assert "hooks.ValidateService[0].location" in str(caught.value)
