# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read and validate an EC2/On-Premises AppSpec the way the CodeDeploy agent does.

Errors carry the agent's own wording where the agent has one (including its typos), so that bundles written
for the agent fail here with the message their authors know. The deliberate differences from the agent are
listed in the README's "Differences" table: among them, an unquoted ``mode: 0644`` means 0644, a quoted
``version: "0.0"`` is accepted, a files source or hook location that climbs out of the bundle and a timeout
above 3600 seconds are errors, and a byte order mark or a date, which the agent refuses, is read with a warning.

Standard library only: this file also runs on target hosts, which have no PyYAML. YAML is read with PyYAML
where it is installed (the controller), and with the collection's own loader (yaml_subset) elsewhere.
"""
from __future__ import annotations

import datetime
import difflib
import functools
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Iterator, Union

from ansible_collections.fleetops.codedeploy.plugins.module_utils import yaml_subset
from ansible_collections.fleetops.codedeploy.plugins.module_utils.yaml_subset import (
    ALIAS_MESSAGE,
    MAX_DEPTH,
    MAX_INTEGER_DIGITS,
    RUBY_TAG_MESSAGE,
    integer_digits_error,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.codedeploy_names import (
    LIFECYCLE_EVENTS, RESERVED_EVENTS)

KeyParts = tuple[Union[str, int], ...]  # a runtime alias: no | here, targets may run Python 3.9

FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
OBJECT_TYPES = ("file", "directory")
DEFAULT_TIMEOUT = 3600
# CodeDeploy fails a lifecycle event that runs longer than this; a script's timeout cannot exceed it.
MAX_TIMEOUT = 3600
# Far beyond any real AppSpec (a few kilobytes); hosts and the controller refuse a larger file unread.
MAX_APPSPEC_BYTES = 1024 * 1024
BYTE_ORDER_MARK = "\ufeff"
APPSPEC_FALLBACK_NAMES = ("appspec.yaml", "appspec.yml")

# The agent's messages, verbatim.
MSG_EMPTY = (
    "The deployment failed because the application specification file was empty. Make sure your AppSpec file"
    " defines at minimum the 'version' and 'os' properties."
)
MSG_VERSION = (
    "The deployment failed because an invalid version value ({}) was entered in the application specification"
    ' file. Make sure your AppSpec file specifies "0.0" as the version, and then try again.'
)
MSG_OS = (
    "The deployment failed because the application specification file specifies an unsupported operating system"
    ' ({}). Specify either "linux" or "windows" in the os section of the AppSpec file, and then try again.'
)
MSG_FILE_EXISTS_BEHAVIOR = (
    "The deployment failed because an invalid file_exists_behavior value ({}) was entered in the application"
    " specification file. Make sure your AppSpec file specifies one of DISALLOW,OVERWRITE,RETAIN as the"
    " file_exists_behavior, and then try again."
)
MSG_NO_SOURCE = (
    "The deployment failed because the application specification file specifies a destination file, but no"
    " source file. Update the files section of the AppSpec file, and then try again."
)
MSG_NO_DESTINATION = (
    "The deployment failed because the application specification file specifies only a source file ({}). Add the"
    " name of the destination file to the files section of the AppSpec file, and then try again."
)
MSG_NO_OBJECT = (
    "The deployment failed because a permission listed in the application specification file has no object"
    " value. Update the permissions section of the AppSpec file, and then try again."
)
MSG_WINDOWS_PERMISSIONS = (
    "The deployment failed because the application specification file specifiles file permissions, but the"
    " deployment is targeting one or more Windows Server instances. Permissions are supported only for Amazon"
    " Linux, Ubuntu Server, and Red Hat Enterprise Linux (RHEL) instances. Update the permissions section of the"
    " AppSpec file, and then try again."
)
MSG_TYPE = (
    "The deployment failed because the application specification filespecifies a permission for an object type"
    " not supported for permissions ({}). Update the permissions section of the AppSpec file, and then try again."
)
MSG_MODE_LENGTH = (
    "The deployment failed because the length of a permissions mode ({}) in the application specification file"
    " is invalid. Permissions modes must be between one and four characters long. Update the permissions section"
    " of the AppSpec file, and then try again."
)
MSG_MODE_CHARACTER = (
    "The deployment failed because the permissions mode ({}) in the application specification file contains an"
    " invalid character ({}). Update the permissions section of the AppSpec file, and then try again."
)
MSG_ACL_INVALID = (
    "The deployment failed because of a problem with the acls permission settings in the application"
    " specification file. Invalid acl entry ({})."
)
MSG_ACL_BASE_ENTRY = (
    "The deployment failed because of a problem with the acls permission settings in the application"
    " specification file. Use mode to set the base acl entry ({}). Update the permissions section of the AppSpec"
    " file, and then try again."
)
MSG_ACL_CHARACTER = (
    "The deployment failed because the access control list (ACL) named {} in the application specification file"
    " contains an invalid character ({}). Correct the ACL in the hooks section of the AppSpec file, and then try"
    " again."
)
MSG_DEFAULT_ACL_ON_FILE = (
    "The deployment failed because the -d parameter has been specified to apply an acl setting to a file. This"
    " parameter is supported for directories only. Update the AppSpec file, and then try again."
)
MSG_FILE_PATTERN = (
    "The deployment failed because the application specification file includes an object ({}) with an invalid"
    " pattern ({}), such as a pattern for a file applied to a directory. Correct the permissions section of the"
    " AppSpec file, and then try again."
)
MSG_FILE_EXCEPT = (
    "The deployment failed because the except parameter for a pattern in the permissions section ({}) for the"
    " object named {} contains an invalid format. Update the AppSpec file, and then try again."
)
MSG_CONTEXT_TYPE = (
    "The deployment failed because the application specification file specifies an invalid context type ({})."
    " Update the permissions section of the AppSpec file, and then try again."
)
MSG_CONTEXT_ROLE = (
    "The deployment failed because the application specification file specifies a role, but roles are not"
    " supported. Remove the role from the AppSpec file, and then try again."
)
MSG_RANGE_ORDER = (
    "The deployment failed because of a problem with the SELinux range specified ({}) for the context parameter"
    " in the permissions section of the application specification file. Make corrections in the permissions"
    " section of the AppSpec file, and then try again."
)
MSG_NO_LOCATION = (
    "The deployment failed because the application specification file specifies a script with no location"
    " value. Specify the location in the hooks section of the AppSpec file, and then try again."
)
MSG_TIMEOUT = (
    "The deployment failed because an invalid timeout value was provided for a script in the application"
    " specification file. Make corrections in the hooks section of the AppSpec file, and then try again."
)
MSG_NOT_FOUND = (
    "The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at"
    ' revision-relative path "{path}". The revision was unpacked to directory "{archive}", and the AppSpec file'
    ' was expected but not found at path "{archive}/{path}". Consult the AWS CodeDeploy Appspec documentation for'
    " more information at http://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html"
)

# Our own messages: for a timeout the service would cut short, for a path the agent would follow out of the bundle.
MSG_TIMEOUT_ABOVE_MAXIMUM = (
    "{key_path} is {seconds} seconds, more than the {maximum} seconds CodeDeploy allows one lifecycle event: the"
    " event fails at {maximum} seconds whatever its scripts' timeouts. Set timeout to {maximum} or less (split"
    " longer work over several events, or start it in the background)."
)
MSG_ESCAPES_BUNDLE = (
    "The deployment failed because the application specification file specifies a {what} ({path}) that points"
    " outside the revision bundle. Paths in the {section} section are relative to the bundle root and cannot"
    " climb out of it with '..'. Update the {section} section of the AppSpec file, and then try again."
)


class AppSpecError(Exception):
    """An AppSpec the agent would refuse, with where in the document the fault is."""

    error_code = "UnknownError"

    def __init__(self, message: str, key_parts: KeyParts = (), line: int | None = None,
                 column: int | None = None, names_place: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.key_parts = tuple(key_parts)
        self.key_path = format_key_path(self.key_parts)
        self.line = line
        self.column = column
        self.names_place = names_place  # our own message, which parse_appspec prefixes with the file and line

    def placed(self, source_name: str) -> AppSpecError:
        """This error, its message starting with the file and line when it is one of ours."""
        if not self.names_place:
            return self
        where = f"{source_name}, line {self.line}" if self.line else source_name
        return AppSpecError(f"{where}: {self.message}", self.key_parts, self.line, self.column)


def format_key_path(key_parts: KeyParts) -> str:
    """("permissions", 1, "mode") -> "permissions[1].mode"."""
    path = ""
    for part in key_parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


# Loading

def check_appspec_size(size: int, source_name: str) -> None:
    """Refuse an AppSpec of ``size`` bytes beyond MAX_APPSPEC_BYTES, before it is read."""
    if size > MAX_APPSPEC_BYTES:
        raise AppSpecError(
            f"Cannot read {source_name}: it is {size} bytes, and an AppSpec file is at most {MAX_APPSPEC_BYTES} bytes"
            " (1 MiB; real ones are a few kilobytes). Check that this file is the revision's AppSpec, and move"
            " anything else out of it.")


def load_appspec_text(text: str, source_name: str = "appspec.yml") -> Any:
    """The document in ``text`` (JSON or YAML) as plain Python values; raises AppSpecError on a syntax error.

    A leading byte order mark is skipped (parse_appspec warns about it).
    """
    check_appspec_size(len(text.encode("utf-8", "replace")), source_name)
    text = text[1:] if text.startswith(BYTE_ORDER_MARK) else text
    document = _load_json(text, source_name)
    if document is not _NOT_JSON:
        return document
    return _load_yaml(text, source_name)


_NOT_JSON = object()
# What JSON nesting depends on: quotes, escaped characters (inside strings) and brackets.
_JSON_NESTING_TOKEN = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


class _LongJsonInteger(Exception):
    """An integer in JSON written with more than MAX_INTEGER_DIGITS digits."""


def _json_integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _LongJsonInteger(digits)
    return int(digits)


def _load_json(text: str, source_name: str) -> Any:
    # JSON goes through the json module so that it also loads on hosts without PyYAML, and so that JSON
    # indented with tabs (which YAML 1.1 refuses) loads as the agent loads it.
    if not text.lstrip().startswith(("{", "[")):
        return _NOT_JSON
    _check_json_nesting(text, source_name)
    try:
        return json.loads(text, parse_int=_json_integer)
    except _LongJsonInteger as long_integer:
        digits = long_integer.args[0]
        raise _syntax_error(source_name, *_line_and_column(text, text.find(digits)),
                            integer_digits_error(digits)) from None
    except ValueError:
        return _NOT_JSON


def _check_json_nesting(text: str, source_name: str) -> None:
    """The json module recurses once per level: refuse more than MAX_DEPTH levels, as the YAML loaders do."""
    depth, in_string = 0, False
    for token in _JSON_NESTING_TOKEN.finditer(text):
        if token.group() == '"':
            in_string = not in_string
        elif in_string or token.group()[0] == "\\":
            continue
        elif token.group() in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise _syntax_error(source_name, *_line_and_column(text, token.start()),
                                    f"collections are nested more than {MAX_DEPTH} levels deep")
        else:
            depth -= 1


def _line_and_column(text: str, index: int) -> tuple[int, int]:
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def _syntax_error(source_name: str, line: int, column: int, problem: str) -> AppSpecError:
    return AppSpecError(f"Cannot read {source_name} at line {line}, column {column}: {problem}.", line=line,
                        column=column)


def _load_yaml(text: str, source_name: str) -> Any:
    try:
        import yaml
    except ImportError:
        # Target hosts rarely have PyYAML: read the AppSpec with the collection's own loader instead.
        return _load_yaml_subset(text, source_name)
    try:
        return yaml.load(text, Loader=_appspec_loader())
    except yaml.MarkedYAMLError as error:
        raise _yaml_syntax_error(error, source_name) from None
    except yaml.YAMLError as error:
        raise AppSpecError(f"Cannot read {source_name}: {error}") from None


def _load_yaml_subset(text: str, source_name: str) -> Any:
    try:
        return yaml_subset.load(text, raw_scalar_keys=frozenset(("mode",)))
    except yaml_subset.YamlSubsetError as error:
        raise _syntax_error(source_name, error.line, error.column, error.message) from None


def _yaml_syntax_error(error: Any, source_name: str) -> AppSpecError:
    mark = error.problem_mark or error.context_mark
    line, column = mark.line + 1, mark.column + 1
    problem = error.problem or error.context
    if error.context and error.problem:
        problem += f" ({error.context})"
    if "\\t" in problem:
        problem += ". YAML is indented with spaces; tabs are not allowed"
    return _syntax_error(source_name, line, column, problem)


@functools.lru_cache(maxsize=None)
def _appspec_loader() -> Any:
    """A SafeLoader that reads an AppSpec as yaml_subset does (see there); built on first use (PyYAML is optional).

    ``mode`` is read as written; aliases are refused and local tags ignored, as the agent's safe load (Psych 4)
    does; nesting and integer length are bounded.
    """
    import yaml

    int_tag = "tag:yaml.org,2002:int"
    str_tag = "tag:yaml.org,2002:str"
    error_class = yaml.constructor.ConstructorError

    class AppSpecLoader(yaml.SafeLoader):
        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self.collection_depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                raise yaml.composer.ComposerError(None, None, ALIAS_MESSAGE.format(event.anchor), event.start_mark)
            collection = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
            if collection:
                self.collection_depth += 1
                if self.collection_depth > MAX_DEPTH:
                    raise yaml.composer.ComposerError(
                        None, None, f"collections are nested more than {MAX_DEPTH} levels deep", event.start_mark)
            node = super().compose_node(parent, index)
            if collection:
                self.collection_depth -= 1
            if node.tag.startswith("!ruby/"):
                raise yaml.composer.ComposerError(None, None, RUBY_TAG_MESSAGE.format(node.tag), node.start_mark)
            if node.tag.startswith("!"):  # a local tag such as !Ref: the node reads as if it had none
                node.tag = self.untagged(node)
            return node

        def untagged(self, node: Any) -> str:
            if isinstance(node, yaml.ScalarNode):
                plain = node.style is None
                return self.resolve(yaml.ScalarNode, node.value, (plain, not plain))
            return self.DEFAULT_SEQUENCE_TAG if isinstance(node, yaml.SequenceNode) else self.DEFAULT_MAPPING_TAG

        def construct_object(self, node: Any, deep: bool = False) -> Any:
            # PyYAML raises a bare ValueError for values such as 0x_ or 2024-13-01: give it the node's place.
            try:
                return super().construct_object(node, deep)
            except ValueError as error:
                raise error_class(None, None, str(error), node.start_mark) from None

        def construct_bounded_int(self, node: Any) -> Any:
            too_long = integer_digits_error(node.value)
            if too_long:
                raise error_class(None, None, too_long, node.start_mark)
            return self.construct_yaml_int(node)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            # YAML 1.1 reads an unquoted 0644 as the octal integer 420; keep the digits as written instead.
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == "mode" and value_node.tag == int_tag:
                    value_node.tag = str_tag
            return super().construct_mapping(node, deep)

    AppSpecLoader.add_constructor(int_tag, AppSpecLoader.construct_bounded_int)
    return AppSpecLoader


def _locate(text: str, key_parts: KeyParts) -> tuple[int, int] | None:
    """The 1-based line and column of ``key_parts`` in the YAML text, or of its deepest part present."""
    try:
        import yaml
    except ImportError:
        return None
    try:
        node = yaml.compose(text, Loader=_appspec_loader())
    except yaml.YAMLError:  # JSON that only the json module reads, such as JSON indented with tabs
        return None
    if node is None:
        return None
    for part in key_parts:
        child = _child_node(node, part)
        if child is None:
            break
        node = child
    return node.start_mark.line + 1, node.start_mark.column + 1


def _child_node(node: Any, part: Union[str, int]) -> Any:
    if isinstance(part, int):
        return node.value[part] if node.id == "sequence" and part < len(node.value) else None
    if node.id == "mapping":
        for key_node, value_node in node.value:
            if key_node.id == "scalar" and key_node.value == part:
                return value_node
    return None


# Validation and normalisation

def parse_appspec(text: str, os_name: str = "linux",
                  source_name: str = "appspec.yml") -> tuple[dict[str, Any], list[str]]:
    """Load, validate and normalise an AppSpec; errors about its content carry the line of the faulty key.

    The warnings include what CodeDeploy's agent would refuse in the file but is read here: a byte order mark,
    dates.
    """
    document = load_appspec_text(text, source_name)
    try:
        _refuse_lone_surrogates(document)
        appspec, warnings = normalise_appspec(document, os_name)
    except AppSpecError as error:
        position = _locate(text, error.key_parts)
        if position:
            error.line, error.column = position
        raise error.placed(source_name) from None
    return appspec, _agent_refusal_warnings(text, document, source_name) + warnings


def _agent_refusal_warnings(text: str, document: Any, source_name: str) -> list[str]:
    warnings = []
    if text.startswith(BYTE_ORDER_MARK):
        # The agent's issue #100, closed without a fix.
        warnings.append(
            f"{source_name} starts with a UTF-8 byte order mark. CodeDeploy's agent reads such a file as if it held"
            ' only its first key, and refuses it (for example "unsupported operating system ()"); it is read whole'
            " here. Save it without the byte order mark if it must also deploy with the agent.")
    dates = list(_dates(document))
    if dates:
        places = []
        for key_parts in dates[:3]:
            position = _locate(text, key_parts)
            places.append(format_key_path(key_parts) + (f" (line {position[0]})" if position else ""))
        more = f" and {len(dates) - 3} more" if len(dates) > 3 else ""
        warnings.append(
            f"{source_name} holds YAML dates or timestamps at {', '.join(places)}{more}. CodeDeploy's agent refuses"
            ' an AppSpec holding any ("Tried to load unspecified class: Date"), even under a key it does not read;'
            " they are read here. Quote them if the file must also deploy with the agent.")
    return warnings


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_lone_surrogates(value: Any, key_parts: KeyParts = ()) -> None:
    """A \\ud800-\\udfff escape (JSON or YAML) loads as half a character: no module could return it (ansible-core
    refuses such a result), so an event would fail without its diagnostics. Refused here, where it is written."""
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_lone_surrogates(key, key_parts)
            _refuse_lone_surrogates(item, key_parts + (key if isinstance(key, str) else _ruby_text(key),))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_lone_surrogates(item, key_parts + (index,))
    elif isinstance(value, str):
        surrogate = LONE_SURROGATE.search(value)
        if surrogate:
            where = format_key_path(key_parts) or "a key"
            raise AppSpecError(f"{where} holds the escape \\u{ord(surrogate.group()):04x}, which is not a Unicode "
                               "character (half of a surrogate pair): write the character itself, or escape it "
                               "whole as \\U and eight hex digits", key_parts, names_place=True)


def _dates(value: Any, key_parts: KeyParts = ()) -> Iterator[KeyParts]:
    """Where the loaded document holds a date or timestamp, as a value or as a key."""
    if isinstance(value, dict):
        for key, item in value.items():
            item_parts = key_parts + (key if isinstance(key, str) else _ruby_text(key),)
            if isinstance(key, datetime.date):
                yield item_parts
            yield from _dates(item, item_parts)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _dates(item, key_parts + (index,))
    elif isinstance(value, datetime.date):
        yield key_parts


def normalise_appspec(raw: Any, os_name: str = "linux") -> tuple[dict[str, Any], list[str]]:
    """Validate a loaded AppSpec as the agent on an ``os_name`` host does; return it normalised, and warnings.

    The sections are checked in the agent's order (version, os, hooks, files, permissions), so that a
    document with several faults reports the fault the agent reports; file_exists_behavior comes last.
    """
    if raw is None or raw is False:
        raise AppSpecError(MSG_EMPTY)
    if not isinstance(raw, dict):
        raise AppSpecError(
            "The AppSpec file must be a mapping of keys such as version, os, files, permissions and hooks, but it"
            f" is {_describe(raw)}. For example: {{version: 0.0, os: linux}}")
    warnings: list[str] = []
    version = _parse_version(raw.get("version"))
    os_value = _parse_os(raw.get("os"), os_name)
    hooks = _parse_hooks(raw.get("hooks"), warnings)
    files = _parse_files(raw.get("files"))
    permissions = _parse_permissions(raw.get("permissions"), os_value)
    file_exists_behavior = _parse_file_exists_behavior(raw.get("file_exists_behavior"))
    appspec = {
        "version": version,
        "os": os_value,
        "file_exists_behavior": file_exists_behavior,
        "files": files,
        "permissions": permissions,
        "hooks": hooks,
    }
    return appspec, warnings


def _parse_version(value: Any) -> str:
    if not _is_version_zero(value):
        raise AppSpecError(MSG_VERSION.format(_ruby_text(value)), ("version",))
    return "0.0"


def _is_version_zero(value: Any) -> bool:
    # The agent compares with the number 0.0, so 0, 0.0 and 0.00 pass. The documentation tells authors to
    # write the version as a string, so "0.0" passes here too (the agent refuses it).
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return value == 0
    return isinstance(value, str) and re.fullmatch(r"0+(\.0+)?", value.strip()) is not None


def _parse_os(value: Any, os_name: str) -> str:
    if value != os_name:
        raise AppSpecError(MSG_OS.format(_ruby_text(value)), ("os",))
    return os_name


def _parse_file_exists_behavior(value: Any) -> str | None:
    if value is None or value in FILE_EXISTS_BEHAVIORS:
        return value
    raise AppSpecError(MSG_FILE_EXISTS_BEHAVIOR.format(_ruby_text(value)), ("file_exists_behavior",))


# hooks

def _parse_hooks(value: Any, warnings: list[str]) -> dict[str, list[dict[str, Any]]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _shape_error(("hooks",), value, "a mapping of lifecycle event names to lists of scripts",
                           "hooks: {AfterInstall: [{location: scripts/install.sh, timeout: 300}]}")
    hooks = {}
    for event_key, scripts in value.items():
        event = _ruby_text(event_key)
        if scripts is None:  # the agent ignores an event without a value (its issue #125), and keeps []
            continue
        event_parts: KeyParts = ("hooks", event)
        if not isinstance(scripts, list):
            raise _shape_error(event_parts, scripts, "a list of scripts, each entry starting with a dash",
                               f"{event}: [{{location: scripts/run.sh, timeout: 300}}]")
        hooks[event] = [_parse_script(script, event_parts + (index,)) for index, script in enumerate(scripts)]
        if scripts:
            warnings.extend(_event_warnings(event))
    return hooks


def _parse_script(script: Any, key_parts: KeyParts) -> dict[str, Any]:
    if not isinstance(script, dict):
        raise _shape_error(key_parts, script, "a mapping with a location",
                           "- {location: scripts/run.sh, timeout: 300, runas: root}")
    location = _stripped_text(script.get("location"))
    if not location:
        raise AppSpecError(MSG_NO_LOCATION, key_parts + ("location",))
    _reject_bundle_escape(location, key_parts + ("location",), "hook script location", "hooks")
    return {
        "location": location,
        "timeout": _parse_timeout(script.get("timeout"), key_parts + ("timeout",)),
        "runas": _stripped_text(script.get("runas")),
        "sudo": _ruby_truthy(script.get("sudo")),
    }


def _ruby_truthy(value: Any) -> bool:
    """How the agent tests sudo: anything but a missing value or false is true (even 0 and "no")."""
    return value is not None and value is not False


def _parse_timeout(value: Any, key_parts: KeyParts) -> int:
    if value is None:
        return DEFAULT_TIMEOUT
    seconds = _ruby_to_i(value)
    if seconds is None or seconds <= 0:
        raise AppSpecError(MSG_TIMEOUT, key_parts)
    if seconds > MAX_TIMEOUT:
        raise AppSpecError(MSG_TIMEOUT_ABOVE_MAXIMUM.format(key_path=format_key_path(key_parts), seconds=seconds,
                                                            maximum=MAX_TIMEOUT), key_parts, names_place=True)
    return seconds


_RUBY_LEADING_INTEGER = re.compile(r"\s*[+-]?[0-9]+(?:_[0-9]+)*")


def _ruby_to_i(value: Any) -> int | None:
    """Ruby's to_i as the agent applies it to a timeout ("30" -> 30, "30s" -> 30, "abc" -> 0, 1.9 -> 1).

    None where Ruby has no to_i (true, lists, mappings) or raises (infinity): the agent crashes there, and
    this is reported as an invalid timeout instead.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        leading_integer = _RUBY_LEADING_INTEGER.match(value)
        if not leading_integer:
            return 0
        written = leading_integer.group(0).replace("_", "").strip()
        sign, digits = written[:1] if written[0] in "+-" else "", written.lstrip("+-").lstrip("0") or "0"
        # Past MAX_TIMEOUT only the comparison matters: 20 digits keep int() far from its 4300-digit limit.
        return int(sign + digits[:20])
    return None


def _event_warnings(event: str) -> list[str]:
    if event in RESERVED_EVENTS:
        return [f"hooks.{event}: the scripts listed under {event} never run. DownloadBundle and Install are"
                " carried out by the deployment itself, BlockTraffic and AllowTraffic by the load balancer; none of"
                " them runs scripts."]
    if event not in LIFECYCLE_EVENTS:
        close = difflib.get_close_matches(event, LIFECYCLE_EVENTS, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        return [f"hooks.{event}: {event} is not a lifecycle event, so the scripts listed under it never run.{hint}"]
    return []


# files

def _parse_files(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _shape_error(("files",), value, "a list of source/destination entries, each starting with a dash",
                           "files: [{source: /, destination: /var/www/html}]")
    return [_parse_file_entry(entry, ("files", index)) for index, entry in enumerate(value)]


def _parse_file_entry(entry: Any, key_parts: KeyParts) -> dict[str, str]:
    if not isinstance(entry, dict):
        raise _shape_error(key_parts, entry, "a mapping with a source and a destination",
                           "- {source: /, destination: /var/www/html}")
    source, destination = entry.get("source"), entry.get("destination")
    if source is None:
        raise AppSpecError(MSG_NO_SOURCE, key_parts + ("source",))
    if destination is None:
        raise AppSpecError(MSG_NO_DESTINATION.format(_ruby_text(source)), key_parts + ("destination",))
    source_text = _ruby_text(source)
    _reject_bundle_escape(source_text, key_parts + ("source",), "source file", "files")
    return {"source": source_text, "destination": _ruby_text(destination)}


def _reject_bundle_escape(path: str, key_parts: KeyParts, what: str, section: str) -> None:
    if _escapes_bundle(path):
        raise AppSpecError(MSG_ESCAPES_BUNDLE.format(what=what, path=path, section=section), key_parts)


def _escapes_bundle(path: str) -> bool:
    """Whether ``path``, resolved against the bundle root as the agent joins it, climbs out with '..'.

    A leading / or ./ stays inside the bundle: the agent appends the path to the bundle's directory.
    """
    depth = 0
    for component in path.split("/"):
        if component == "..":
            depth -= 1
            if depth < 0:
                return True
        elif component not in ("", "."):
            depth += 1
    return False


# permissions

def _parse_permissions(value: Any, os_value: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _shape_error(("permissions",), value, "a list of entries, each starting with a dash",
                           "permissions: [{object: /var/www/html, owner: www-data, mode: '0644', type: [file]}]")
    return [_parse_permission(entry, ("permissions", index), os_value) for index, entry in enumerate(value)]


def _parse_permission(entry: Any, key_parts: KeyParts, os_value: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise _shape_error(key_parts, entry, "a mapping with an object",
                           "- {object: /var/www/html, owner: www-data, mode: '0644'}")
    object_path = _stripped_text(entry.get("object"))
    if not object_path:
        raise AppSpecError(MSG_NO_OBJECT, key_parts + ("object",))
    if os_value != "linux":
        raise AppSpecError(MSG_WINDOWS_PERMISSIONS, key_parts)
    pattern = entry.get("pattern")
    return {
        "object": object_path,
        "pattern": "**" if pattern is None else _ruby_text(pattern),
        "except": _parse_text_list(entry.get("except"), key_parts + ("except",), "except: ['*.log', '*.tmp']"),
        "type": _parse_types(entry.get("type"), key_parts + ("type",)),
        "owner": _optional_text(entry.get("owner")),
        "group": _optional_text(entry.get("group")),
        "mode": _parse_mode(entry.get("mode"), key_parts + ("mode",)),
        "acls": _parse_acls(entry.get("acls"), key_parts + ("acls",)),
        "context": _parse_context(entry.get("context"), key_parts + ("context",)),
    }


def _parse_text_list(value: Any, key_parts: KeyParts, example: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _shape_error(key_parts, value, "a list", example)
    return [_ruby_text(item) for item in value]


def _parse_types(value: Any, key_parts: KeyParts) -> list[str]:
    if value is None:
        return list(OBJECT_TYPES)
    if not isinstance(value, list):
        raise _shape_error(key_parts, value, "a list of object types, file and/or directory",
                           "type: [file] or type: [file, directory]")
    for index, object_type in enumerate(value):
        if object_type not in OBJECT_TYPES:
            raise AppSpecError(MSG_TYPE.format(_ruby_text(object_type)), key_parts + (index,))
    return list(value)


def _parse_mode(value: Any, key_parts: KeyParts) -> str | None:
    if value is None:
        return None
    mode = _ruby_text(value).rjust(3, "0")  # the agent left-pads to 3 digits: 7 -> 007
    if len(mode) > 4:
        raise AppSpecError(MSG_MODE_LENGTH.format(mode), key_parts)
    for character in mode:
        if character not in "01234567":
            raise AppSpecError(MSG_MODE_CHARACTER.format(mode, character), key_parts)
    return mode


def _parse_acls(value: Any, key_parts: KeyParts) -> list[str]:
    entries = _parse_text_list(value, key_parts, "acls: ['u:deploy:rwx', 'd:g:web:r-x']")
    for index, entry in enumerate(entries):
        parse_ace(entry, key_parts + (index,))
    return entries


ACE_KINDS = {"u": "user", "user": "user", "g": "group", "group": "group", "m": "mask", "mask": "mask",
             "o": "other", "other": "other"}
_DEFAULT_ACE_MARKS = ("d", "default")


@dataclass(frozen=True)
class Ace:
    """One ACL entry of an AppSpec, as setfacl reads it."""

    default: bool
    kind: str  # user, group, mask or other
    name: str
    permissions: int  # rwx as 3 bits

    def text(self) -> str:
        """setfacl's long form: u:bob:7 -> user:bob:rwx."""
        bits = "".join(letter if self.permissions & bit else "-" for letter, bit in (("r", 4), ("w", 2), ("x", 1)))
        return "{}{}:{}:{}".format("default:" if self.default else "", self.kind, self.name, bits)


def parse_ace(ace: str, key_parts: KeyParts = ()) -> Ace:
    """The agent's ACL entry grammar: [d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]:][name]:(perms).

    An entry the agent refuses raises AppSpecError with its message (``key_parts`` says where it is).
    """
    fields = ace.split(":")
    if not 2 <= len(fields) <= 4:
        raise AppSpecError(MSG_ACL_INVALID.format(ace), key_parts)
    *prefix, name, permissions = fields
    default = len(prefix) == 2
    if default and prefix[0] not in _DEFAULT_ACE_MARKS:
        raise AppSpecError(MSG_ACL_INVALID.format(ace), key_parts)
    kind: str | None = None
    if prefix:
        tag = prefix[-1]
        if tag in _DEFAULT_ACE_MARKS and not default:  # d:name:perms
            default = True
        elif tag in ACE_KINDS:
            kind = ACE_KINDS[tag]
        else:  # an unknown tag, or d:d:name:perms
            raise AppSpecError(MSG_ACL_INVALID.format(ace), key_parts)
    middle_kind = ACE_KINDS.get(name)
    if middle_kind in ("mask", "other"):
        # Without a type before it, m or o is the type (m:7 means m::7); after one, it names "mask" or "other".
        if kind is None:
            kind, name = middle_kind, ""
        else:
            name = middle_kind
    kind = kind or "user"
    if kind in ("mask", "other") and name:
        raise AppSpecError(MSG_ACL_INVALID.format(ace), key_parts)
    if not default and kind != "mask" and not name:
        raise AppSpecError(MSG_ACL_BASE_ENTRY.format(ace), key_parts)
    return Ace(default, kind, name, _ace_permission_bits(ace, permissions, key_parts))


def _ace_permission_bits(ace: str, permissions: str, key_parts: KeyParts) -> int:
    """An octal digit, or letters among r, w, x and -."""
    if len(permissions) == 1 and permissions in "01234567":
        return int(permissions)
    for character in permissions:
        if character not in "rwx-":
            raise AppSpecError(MSG_ACL_CHARACTER.format(ace, character), key_parts)
    return sum(bit for letter, bit in (("r", 4), ("w", 2), ("x", 1)) if letter in permissions)


def _parse_context(value: Any, key_parts: KeyParts) -> dict[str, str | None] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") is None:
        raise AppSpecError(MSG_CONTEXT_TYPE.format(_ruby_inspect(value)), key_parts)
    selinux_range = _optional_text(value.get("range"))
    if selinux_range is not None:
        _check_selinux_range(selinux_range, key_parts + ("range",))
    if value.get("role") is not None:
        raise AppSpecError(MSG_CONTEXT_ROLE, key_parts + ("role",))
    # The agent reads the SELinux user from "name"; the "user" key the documentation shows is ignored.
    return {"name": _optional_text(value.get("name")), "type": _ruby_text(value["type"]), "range": selinux_range}


def _check_selinux_range(selinux_range: str, key_parts: KeyParts) -> None:
    """The agent's SELinux range grammar: s<n>[-s<n>][:c<n>[.c<n>][,c<n>[.c<n>]]...], categories up to 1023."""
    parts = _split_range_part(selinux_range, ":", key_parts)
    sensitivities = _split_range_part(parts[0], "-", key_parts)
    low = _range_level(sensitivities[0], "s", "sensitivity", key_parts)
    if len(sensitivities) == 2 and _range_level(sensitivities[1], "s", "sensitivity", key_parts) < low:
        raise AppSpecError(MSG_RANGE_ORDER.format(selinux_range), key_parts)
    if len(parts) == 2:
        _check_categories(parts[1], key_parts)


def _split_range_part(text: str, separator: str, key_parts: KeyParts) -> list[str]:
    parts = text.split(separator, 1)
    if "" in parts:
        raise AppSpecError(f"invalid range part {text}", key_parts)
    return parts


def _range_level(text: str, prefix: str, kind: str, key_parts: KeyParts) -> int:
    if not re.fullmatch(prefix + "[0-9]+", text) or (kind == "category" and int(text[1:]) > 1023):
        raise AppSpecError(f"invalid {kind} {text}", key_parts)
    return int(text[1:])


def _check_categories(text: str, key_parts: KeyParts) -> None:
    items = text.split(",")
    while items and items[-1] == "":  # Ruby's split drops trailing empty fields: "c1," is c1
        items.pop()
    categories: list[int] = []
    for item in items:
        if "." not in item:
            categories.append(_range_level(item, "c", "category", key_parts))
            continue
        low_text, high_text = _split_range_part(item, ".", key_parts)
        low = _range_level(low_text, "c", "category", key_parts)
        high = _range_level(high_text, "c", "category", key_parts)
        if high < low:
            raise AppSpecError(f"invalid category range {low_text}.{high_text}", key_parts)
        categories.extend(range(low, high + 1))
    if len(set(categories)) != len(categories):
        raise AppSpecError("duplicate categories", key_parts)


def check_file_permission(permission: dict[str, Any], key_parts: KeyParts = ()) -> None:
    """The agent's extra checks for a normalised permission whose object is a file the Install copies.

    Only the Install knows whether the object is such a file, so it calls this: such a permission takes no
    pattern, no except and no default ACL entry.
    """
    if "file" not in permission["type"]:
        return
    if permission["pattern"] != "**":
        raise AppSpecError(MSG_FILE_PATTERN.format(permission["object"], permission["pattern"]), key_parts)
    if permission["except"]:
        raise AppSpecError(MSG_FILE_EXCEPT.format(_ruby_inspect(permission["except"]), permission["object"]),
                           key_parts)
    if any(parse_ace(ace).default for ace in permission["acls"]):
        raise AppSpecError(MSG_DEFAULT_ACL_ON_FILE, key_parts)


# Finding the file

def find_appspec(directory: str, appspec_filename: str = "appspec.yml") -> str:
    """The AppSpec file of an unpacked bundle: ``appspec_filename``, else appspec.yaml, else appspec.yml.

    The agent falls back like this at Install; hooks here do the same (a deliberate difference: the agent's
    hooks look for ``appspec_filename`` only).
    """
    for name in (appspec_filename,) + APPSPEC_FALLBACK_NAMES:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    raise AppSpecError(MSG_NOT_FOUND.format(path=appspec_filename, archive=directory))


def read_appspec_file(path: str, appspec_filename: str = "appspec.yml") -> tuple[str, str]:
    """(file, text) of the AppSpec at ``path``, a file or an unpacked revision directory (found as above)."""
    appspec_path = find_appspec(path, appspec_filename) if os.path.isdir(path) else path
    try:
        with open(appspec_path, "rb") as appspec_file:
            check_appspec_size(os.fstat(appspec_file.fileno()).st_size, appspec_path)
            data = appspec_file.read(MAX_APPSPEC_BYTES + 1)  # a file that grew since
        check_appspec_size(len(data), appspec_path)
        return appspec_path, data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AppSpecError(f"Cannot read the AppSpec file {appspec_path}: {error}") from None


def load_revision_appspec(archive_dir: str, appspec_filename: str = "appspec.yml") -> tuple[dict, list[str]]:
    """Read and validate the AppSpec of an unpacked revision: (normalised AppSpec, warnings)."""
    path, text = read_appspec_file(archive_dir, appspec_filename)
    return parse_appspec(text, source_name=path)


# Rendering values as the agent's messages do

def _ruby_text(value: Any) -> str:
    """What Ruby's string interpolation makes of a loaded YAML value: nil -> "", true -> "true"."""
    if value is None:
        return ""
    if isinstance(value, (bool, list, dict)):
        return _ruby_inspect(value)
    return str(value)


def _ruby_inspect(value: Any) -> str:
    """Ruby's inspect of a loaded YAML value, as in the agent's message for a context without a type."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_ruby_inspect(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(_ruby_inspect(key) + "=>" + _ruby_inspect(item) for key, item in value.items()) + "}"
    return str(value)


def _stripped_text(value: Any) -> str | None:
    return None if value is None else _ruby_text(value).strip()


def _optional_text(value: Any) -> str | None:
    return None if value is None else _ruby_text(value)


def _shape_error(key_parts: KeyParts, value: Any, expected: str, example: str) -> AppSpecError:
    """Our own message where the agent would crash on a value of the wrong shape."""
    return AppSpecError(
        f"{format_key_path(key_parts)} must be {expected}, but it is {_describe(value)}. For example: {example}",
        key_parts)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "empty"
    return f"the value {_ruby_text(value)}"
