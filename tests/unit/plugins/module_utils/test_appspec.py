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
from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import (
    LIFECYCLE_EVENTS,
    RESERVED_EVENTS,
    AppSpecError,
    check_file_permission,
    find_appspec,
    load_appspec_text,
    normalise_appspec,
    parse_appspec,
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
    ("30", 30), ("'30'", 30), ("1.9", 1), ("99999", 99999), ("'45s'", 45), ("' 12'", 12), ("'1_000'", 1000),
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


def test_events_without_scripts_are_ignored():
    result, warnings = parse_appspec(appspec("""\
        hooks:
          BeforeInstall:
          AfterInstall: []
          Install:
          ApplicationStart:
            - location: start.sh
        """))
    assert list(result["hooks"]) == ["ApplicationStart"]
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
     "found the alias *script; YAML anchors and aliases are not supported in an AppSpec file (the CodeDeploy agent"
     " rejects them), write the value out in full."),
    (HEADER + "base: &base {location: a.sh}\nhooks:\n  AfterInstall:\n    - <<: *base\n      timeout: 5\n", 6, 11,
     "found the alias *base; YAML anchors and aliases are not supported in an AppSpec file (the CodeDeploy agent"
     " rejects them), write the value out in full."),
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
