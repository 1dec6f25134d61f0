# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stdlib YAML loader for AppSpec files: same values as PyYAML's safe_load, clear errors otherwise."""
from __future__ import annotations

import datetime
import json
import random

import pytest

from ansible_collections.fleetops.codedeploy.plugins.module_utils.yaml_subset import YamlSubsetError, load

try:
    import yaml
except ImportError:  # target hosts: only the tests that need no PyYAML run
    yaml = None

needs_pyyaml = pytest.mark.skipif(yaml is None, reason="PyYAML is not installed")


def same_as_pyyaml(text: str) -> None:
    # repr tells True from 1 and 1.0 from 1, and shows key order; NaN compares equal as 'nan'.
    assert repr(load(text)) == repr(yaml.safe_load(text))


# Realistic AppSpec files

FULL_APPSPEC = """\
# Every section of an EC2/On-Premises AppSpec, written the way the AWS docs write them.
version: 0.0
os: linux
files:
  - source: Config/config.txt
    destination: /webapps/Config
  - source: source
    destination: /webapps/myApp
file_exists_behavior: OVERWRITE
permissions:
  - object: /tmp/webapp/src
    group: wheel
    mode: 564
    type:
      - directory
  - object: /var/www/html/WordPress
    pattern: "**"
    except: [/var/www/html/WordPress/wp-config.php]
    owner: apache
    group: apache
    mode: 0644
    acls:
      - u:bob:rw
      - d:g:dev:rwx
    context:
      name: unconfined_u
      type: httpd_sys_content_t
      range: s0-s0:c0.c255
    type: [file, directory]
hooks:
  BeforeBlockTraffic:
    - location: Scripts/StopTraffic.sh
      timeout: 300
      runas: codedeployuser
  AfterBlockTraffic:
    - location: Scripts/AfterBlock.sh
  ApplicationStop:
    - location: Scripts/StopApplication.sh
      timeout: 300
  BeforeInstall:
    - location: Scripts/UnzipResourceBundle.sh
    - location: Scripts/UnzipDataBundle.sh
      timeout: 180
  AfterInstall:
    - location: Scripts/RunResourceTests.sh
      timeout: 180
      sudo: true
  ApplicationStart:
    - location: Scripts/RunFunctionalTests.sh
      timeout: 3600
      runas: root
  ValidateService:
    - location: Scripts/MonitorService.sh
      timeout: 3600
      runas: codedeployuser
  BeforeAllowTraffic:
    - location: Scripts/BeforeAllow.sh
  AfterAllowTraffic:
    - location: Scripts/AfterAllow.sh
      timeout: 60
      sudo: no
"""

APPSPECS = {
    "full": FULL_APPSPEC,
    "lists at their key's indentation": """\
---
version: 0.0
os: linux
files:
- source: /
  destination: /var/www/app
permissions:
- object: /var/www/app
  owner: www-data
  type:
  - file
hooks:
  AfterInstall:
  - location: scripts/after_install.sh
    timeout: 120
...
""",
    "quoting, comments and flow collections": """\
version: 0.0   # must be the number 0.0
os: "linux"
files:
  - {source: 'app/', destination: "/opt/app"}   # one-line mapping
  - source: "conf/it's here.conf"
    destination: '/etc/app/it''s here'
permissions:
  - object: "/opt/app"
    mode: "0755"
    acls: ["u:deploy:rwx", 'g:ops:r-x']
    context: {name: system_u, type: usr_t}
    except: []
hooks:
  # no scripts before the install
  BeforeInstall:
  ApplicationStart:
    - location: "scripts/start.sh"
      timeout: "30"
      runas: "app user"
  ValidateService: []
""",
    "scalar types an author might write": """\
version: 0
os: linux
file_exists_behavior: RETAIN
permissions:
  - object: /srv/a
    mode: 0777
  - object: /srv/b
    mode: 0755
  - object: /srv/c
    mode: 644
    owner: 1000
hooks:
  ApplicationStop:
    - location: scripts/stop.sh
      timeout: 1.9
      sudo: yes
  ApplicationStart:
    - location: scripts/start.sh
      timeout: ~
      sudo: False
      runas: null
""",
    "double-quoted escapes and multi-line strings": """\
version: 0.0
os: linux
hooks:
  AfterInstall:
    - location: "scripts/tab\\there\\u00e9\\x41.sh"
      runas: 'deploy'
      description: "a long description that goes on
        over two lines"
      note: plain text that is
        continued on the next line

        and a paragraph
""",
    "block scalars": """\
version: 0.0
os: linux
notes: |
  Deployed by the release pipeline.
    Indented line kept.

  Last line.
summary: >-
  Folded into
  one line.
keep: |+
  trailing

hooks: {}
""",
    "windows line endings": "version: 0.0\r\nos: linux\r\nfiles:\r\n  - source: a\r\n    destination: /b\r\n",
    "one-line JSON": '{"version": 0.0, "os": "linux", "files": [{"source": "/", "destination": "/opt/x"}], '
                     '"hooks": {"AfterInstall": [{"location": "s.sh", "timeout": 30, "sudo": true}]}}',
    "indented JSON": json.dumps({
        "version": 0.0, "os": "linux",
        "permissions": [{"object": "/x", "mode": "644", "type": ["file"], "acls": ["u:a:rw"]}],
        "hooks": {"ApplicationStart": [{"location": "start.sh", "runas": None, "timeout": 10}]},
    }, indent=2),
}


@needs_pyyaml
@pytest.mark.parametrize("name", sorted(APPSPECS))
def test_appspec_loads_as_pyyaml_loads_it(name):
    same_as_pyyaml(APPSPECS[name])


def test_full_appspec_values():  # runs without PyYAML too
    spec = load(FULL_APPSPEC)
    assert spec["version"] == 0.0 and isinstance(spec["version"], float)
    assert spec["files"][1] == {"source": "source", "destination": "/webapps/myApp"}
    permission = spec["permissions"][1]
    assert permission["mode"] == 420  # YAML 1.1 octal, as PyYAML and the agent read it
    assert permission["except"] == ["/var/www/html/WordPress/wp-config.php"]
    assert permission["context"] == {"name": "unconfined_u", "type": "httpd_sys_content_t", "range": "s0-s0:c0.c255"}
    assert permission["type"] == ["file", "directory"]
    assert spec["hooks"]["AfterInstall"] == [{"location": "Scripts/RunResourceTests.sh", "timeout": 180, "sudo": True}]
    assert spec["hooks"]["AfterAllowTraffic"][0]["sudo"] is False
    assert list(spec["hooks"]) == [
        "BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop", "BeforeInstall", "AfterInstall",
        "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic"]


def test_indentless_lists_and_markers():
    spec = load(APPSPECS["lists at their key's indentation"])
    assert spec["files"] == [{"source": "/", "destination": "/var/www/app"}]
    assert spec["permissions"][0]["type"] == ["file"]


@pytest.mark.parametrize("name", ["one-line JSON", "indented JSON"])
def test_json_loads_as_json(name):
    assert load(APPSPECS[name]) == json.loads(APPSPECS[name])


def test_json_indented_with_tabs_loads():
    # PyYAML refuses this, but tabs between tokens of a flow collection are valid YAML and JSON.
    text = json.dumps({"version": 0.0, "files": [{"source": "/", "destination": "/x"}]}, indent="\t")
    assert load(text) == json.loads(text)


# Scalars

SCALARS = [
    "", "~", "null", "Null", "NULL", "nULL", "true", "True", "TRUE", "tRUE", "yes", "Yes", "YES", "no", "NO", "on",
    "On", "OFF", "off", "y", "n", "0", "-0", "+0", "12", "-12", "+12", "1_000", "0644", "0755", "0777", "08", "0o644",
    "0x1F", "-0x1f", "0b101", "0b_", "0_", "00", "1:30", "-1:30:00", "1:60", "0:30", "1.5", "1.", ".5", "-.5", "1e3",
    "1.0e+3", "1.0e3", "1.0E-3", "1_0.5_0", "1:30.5", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", "2024-01-02",
    "2024-1-2", "2024-01-02 10:20:30", "2024-1-2T3:04:05.123Z", "2024-01-02 10:20:30.1234567 -5",
    "2024-01-02t10:20:30+05:30", "3.0.1", "v1.2", "<", "a b", "a  b", "-x", ":x", "?x", "x:y", "x#y", "x,y",
    "a: b", "'single'", '"double"', "'it''s'", '"tab\\t"', '"\\x41\\u00e9\\U0001F600"', '"\\N\\_\\L\\P\\e\\a\\0\\/"',
]


@needs_pyyaml
@pytest.mark.parametrize("scalar", SCALARS)
def test_scalar_typing_matches_pyyaml(scalar):
    text = "value: {}\n".format(scalar)
    try:
        expected = repr(yaml.safe_load(text))
    except (yaml.YAMLError, ValueError):  # PyYAML raises ValueError for 0b_ and impossible dates
        with pytest.raises(YamlSubsetError):
            load(text)
        return
    assert repr(load(text)) == expected


@pytest.mark.parametrize("text, expected", [
    ("mode: 0644", 420), ("mode: 644", 644), ("timeout: 1_800", 1800), ("mode: 0x1F", 31), ("time: 1:30", 90),
    ("v: .5", 0.5), ("v: 1e3", "1e3"), ("v: 1.0e+3", 1000.0), ("v: 0o644", "0o644"), ("v: On", True),
    ("v: NO", False), ("v: =", "="), ("v:", None), ("v: ~", None), ("v: '0644'", "0644"), ('v: "yes"', "yes"),
    ("v: 2024-01-02", datetime.date(2024, 1, 2)),
    ("v: 2024-01-02T10:20:30Z", datetime.datetime(2024, 1, 2, 10, 20, 30, tzinfo=datetime.timezone.utc)),
])
def test_scalar_typing(text, expected):
    value = load(text)["v" if text.startswith("v") else text.split(":")[0]]
    assert value == expected and type(value) is type(expected)


# Constructs beyond the scalars

SNIPPETS = [
    "a: 1\na: 2", "1: a\n1.5: b\nyes: c\n~: d", "'a': 1\n\"b\": 2", "a  :  1", "- a\n b", "- - a\n  - b",
    "- a: 1\n  b: 2", "-  a:  1\n   b: 2", "-\n- ", "a:\n  - b\n  -\n  - c", "a:\n- b\nc: d", "- a:\n  - x\n  b: 1",
    "a: x\n  - y", "x\ny", "a: b\n  c\n d", "a: x\n\n  y", "a: x\n ...\n", "a:  # c\n  b", "a: b # c\n# d\nc: 1",
    "a: b#c", "a:#c", "a: #c", "a: x #", "a: '#x'", "a: x, y", "  a: 1\n  b: 2", "--- {a: 1}", "--- |\n  x\n",
    "---\n...\n", "a: 1\n...\n", "--- >\n x\n", "a: [b,\n c]", "a: [b,\nc]", "a:\n  [b,\nc]", "{a:1}", '{"a":1}',
    "{a: 1,}", "[a,]", "[a, b: c]", "{a}", "a: [ ]", "a: {}", "- [a, [b, c], {d: e}]", "a: {b: [1, 2], c: }",
    "a: {b, c: d}", "a: [b: c]", "a: [a#b]", "a: [a #b\n]", 'a: ["x":y]', "a: [x:y]", "a: {x:y}", "[a :b]",
    "a: 'x''y'", "a: 'x\n\n  y'", 'a: "x\\\n  y"', 'a: "x\n\ty"', "a: 'x \n  y'", 'a: "x\\ \n y"',
    'a: "\\\n\n  b"', "'a\nb'", "a:\n  \"x\n y\"", "\ufeffa: 1", "# only a comment\n", "",
    "a: |\n  x\n  y\nb: 1", "a: >\n  x\n  y\n\n  z\n", "a: |-\n  x\n\n", "a: |+\n  x\n\n", "a: |2\n   x\n",
    "a: >\n  x\n    y\n  z\n", "a: | #c\n  x", "a: |-2\n   x", "- |\n x", "a:\n- |\n x", "- a: |\n   x\n  b: 1",
    "a: >-\n  x\n   y\n  z\n", "a: >\n\n  x\n", "a: |\n\n  x\n\n\n", "a: >\n  x\n  \n  y\n", "a: >+\n  x\n\n",
    "a: |\n  x", "a: |\n  x\n  ", "a: |+\n\n", "a: |-\n", "a: >\n  a\n\n   b\n\n  c\n", "- >\n  a\n  b\n- x",
    "a: >2-\n   x\n  y\n", "a: |\n  \ttab inside\n",
]


@needs_pyyaml
@pytest.mark.parametrize("text", SNIPPETS)
def test_snippet_loads_as_pyyaml_loads_it(text):
    same_as_pyyaml(text)


def test_block_scalars():
    spec = load(APPSPECS["block scalars"])
    assert spec["notes"] == "Deployed by the release pipeline.\n  Indented line kept.\n\nLast line.\n"
    assert spec["summary"] == "Folded into one line."
    assert spec["keep"] == "trailing\n\n"
    assert load("a: >\n  one\n  two\n\n  three\n") == {"a": "one two\nthree\n"}
    assert load("a: |-\n  x\n\n") == {"a": "x"}
    assert load("- |2\n    indented\n") == ["  indented\n"]


# raw_scalar_keys

RAW = frozenset({"mode"})


@pytest.mark.parametrize("text, expected", [
    ("mode: 0644", "0644"), ("mode: 644", "644"), ("mode: 0755", "0755"), ("mode: '0644'", "0644"),
    ('mode: "0644"', "0644"), ("mode: 0x1F", "0x1F"), ("mode: yes", "yes"), ("mode:\n  0644", "0644"),
    ("mode: 0644 # comment", "0644"), ("mode:", None), ("mode: [0644]", [420]),
    ("mode: {mode: 0644}", {"mode": "0644"}),
])
def test_raw_scalar_keys_keep_plain_scalars_as_written(text, expected):
    assert load(text, raw_scalar_keys=RAW)["mode"] == expected


def test_raw_scalar_keys_apply_at_every_depth_and_only_to_their_key():
    text = "permissions:\n  - object: /x\n    mode: 0644\n    owner: 0644\n  - {object: /y, mode: 0755}\n"
    loaded = load(text, raw_scalar_keys=RAW)
    assert loaded["permissions"] == [{"object": "/x", "mode": "0644", "owner": 420}, {"object": "/y", "mode": "0755"}]
    assert load("- mode: 0644", raw_scalar_keys=RAW) == [{"mode": "0644"}]
    assert load("mode: 0644") == {"mode": 420}


# Refused constructs and syntax errors: message, line and column

@pytest.mark.parametrize("text, fragment, line, column", [
    ("a: 1\nb: *anchor\n", "Unknown alias: anchor.", 2, 4),
    ("a: [x, *y]\n", "Unknown alias: y.", 1, 8),
    ("a: &x 1\nb: {c: *x}\n", "Unknown alias: x.", 2, 8),
    ("a: !!str 0644\n", "the YAML tag !!str is not supported", 1, 4),
    ("a: !<tag:yaml.org,2002:str> 0644\n", "the YAML tag !<tag:yaml.org,2002:str> is not supported", 1, 4),
    ("a: !e!x 1\n", "the YAML tag !e!x is not supported", 1, 4),
    ("- !a !b x\n", "the YAML tag !b is not supported", 1, 6),
    ("a: &x &y 1\n", "an anchor is '&' and a name", 1, 7),
    ("a: & 1\n", "an anchor is '&' and a name", 1, 4),
    ("version: 0.0\n---\nos: linux\n", "second YAML document", 2, 1),
    ("a: 1\n...\n---\nb: 2\n", "second YAML document", 3, 1),
    ("%YAML 1.1\n---\na: 1\n", "directives", 1, 1),
    ("? complex\n: key\n", "complex mapping keys", 1, 1),
    ("[a, b]: c\n", "complex mapping keys", 1, 1),
    ("{a: [b, c]}: d\n", "complex mapping keys", 1, 1),
    ("a: {[b]: c}\n", "complex mapping keys", 1, 5),
    ("a: [[b]: c]\n", "complex mapping keys", 1, 5),
    ("<<: {a: 1}\n", "merge keys", 1, 1),
    ("files:\n\t- source: /\n", "tab", 2, 1),
    ("files:\n  - source:\t/\n", "tab", 2, 12),
    ("a: b\t\n", "tab", 1, 5),
    ("a: 1\n  \t# comment\n", "tab", 2, 3),
])
def test_refused_constructs(text, fragment, line, column):
    with pytest.raises(YamlSubsetError) as caught:
        load(text)
    error = caught.value
    assert fragment in error.message
    assert (error.line, error.column) == (line, column)
    assert str(error).endswith("(line {}, column {})".format(line, column))


def test_error_message_names_the_construct_and_position():
    with pytest.raises(YamlSubsetError) as caught:
        load("version: 0.0\nos: linux\nhooks:\n  Stop: *stop_scripts\n")
    assert str(caught.value) == ("Unknown alias: stop_scripts. The CodeDeploy agent does not follow YAML aliases such"
                                 " as *stop_scripts; write the value out in full (line 4, column 9)")


@pytest.mark.parametrize("text, fragment, line, column", [
    ("a: b: c\n", "': '", 1, 5),
    ("a: x\n  b: y\n", "': '", 2, 4),
    ("a: - b\n", "list cannot start on the same line", 1, 4),
    ("a: 1\n- b\n", "'- ' list entry among mapping keys", 2, 1),
    ("a:\n  - b\n  c: 1\n", "expected a '- ' list entry", 3, 3),
    ("a:\n    b: 1\n  c: 2\n", "bad indentation", 3, 3),
    ('a: "x"\n  y\n', "bad indentation", 2, 3),
    ("- a\n- 'b'\n  - c\n", "bad indentation", 3, 3),
    ("- a\nb: 1\n", "expected a '- ' list entry", 2, 1),
    ("a: 1\nb\n", "expected a mapping entry", 2, 1),
    ("a: [1, 2] x\n", "expected the end of the line", 1, 11),
    ("a: 'x' y\n", "expected the end of the line", 1, 8),
    ("a: [1, 2}\n", "expected ',' or ']'", 1, 9),
    ("a: [1, 2\nb: 3]\n", "a mapping key and its ':' must be on the same line", 2, 2),
    ("a: [1, 2\n", "never closed", 1, 4),
    ("a: {b: 1\n", "never closed", 1, 4),
    ('a: "unterminated\n', "never closed", 1, 4),
    ("a: 'unterminated\n\nb: 1\n", "never closed", 1, 4),
    ("a: 'x\n---\n'\n", "document marker", 2, 1),
    ("a: [x,\n...\n]\n", "document marker", 2, 1),
    ('a: "\\q"\n', "invalid escape", 1, 5),
    ('a: "\\x4"\n', "invalid escape", 1, 5),
    ('a: "\\U00110000"\n', "not a Unicode character", 1, 5),
    ("a: |0\n x\n", "indentation indicator", 1, 5),
    ("a: |x\n x\n", "chomping", 1, 5),
    ("a: ]\n", "unexpected ']'", 1, 4),
    ("a: @x\n", "reserves", 1, 4),
    ("a: %x\n", "'%'", 1, 4),
    ("a: [1,,2]\n", "unexpected ','", 1, 7),
    ("a: {b: 1 c: 2}\n", "expected ',' or '}'", 1, 11),
    ("a: 0b_\n", "not a valid integer", 1, 4),
    ("a: 2024-13-01\n", "not a valid one", 1, 4),
    ("a: \x07\n", "U+0007", 1, 4),
    ("a: b\n\x00", "U+0000", 2, 1),
])
def test_syntax_errors(text, fragment, line, column):
    with pytest.raises(YamlSubsetError) as caught:
        load(text)
    assert fragment in caught.value.message
    assert (caught.value.line, caught.value.column) == (line, column)


@needs_pyyaml
@pytest.mark.parametrize("text", [
    "a: b: c", "a: x\n  b: y", "a: - b", "a: 1\n- b", "a:\n  - b\n  c: 1", "a:\n    b: 1\n  c: 2", "- a\nb: 1",
    "a: [1, 2] x", "a: 'x' y", "a:\tb", "\ta: 1", "a: b\tc", "a: 1\n\t\nb: 2", "a: |0\n x", "a: |#c\n  x",
    "a: |\n    \n  x\n", "a: |\n  x\n b: 1", 'a: "\\q"', "a: ]", "a: }", "a: @x", "a: `x", "a: 1\n...\nb",
    "a\n: 1", '"a\nb": 1', "a: x\n  #c\n  y", "a: 'x'\n  y", "- a: 1\n   b: 2", "[: a]", "{: a}", "a: [x\n---\n]",
    "a: <<", "a: |\n\ttab inside\n", "a: 0x_", "a: 2024-13-01", "a: \x07", "[a\n: b]", '{"a"\n: 1}', "a: [1,,2]",
])
def test_what_pyyaml_refuses_is_refused(text):
    with pytest.raises((yaml.YAMLError, ValueError)):  # PyYAML raises ValueError for 0x_ and impossible dates
        yaml.safe_load(text)
    with pytest.raises(YamlSubsetError):
        load(text)


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(YamlSubsetError, match="nested more than"):
        load("[" * 500 + "]" * 500)
    with pytest.raises(YamlSubsetError, match="nested more than"):
        load("".join(" " * depth + "- \n" for depth in range(200)))


# Fuzzing: random damage to valid files never raises anything but YamlSubsetError

FUZZ_CHARACTERS = list(":-#'\"[]{},|>&*!?%@`\\\t\n ") + ["  ", "0", "a", "- ", ": ", "---", "..."]


def mutate(text: str, rng: random.Random) -> str:
    for _mutation in range(rng.randint(1, 3)):
        index = rng.randrange(len(text) + 1)
        operation = rng.randrange(4)
        if operation == 0:
            text = text[:index] + rng.choice(FUZZ_CHARACTERS) + text[index:]
        elif operation == 1:
            text = text[:index] + text[index + rng.randint(1, 3):]
        elif operation == 2:
            lines = text.split("\n")
            line = rng.randrange(len(lines))
            lines[line] = " " * rng.randint(0, 3) + lines[line].lstrip(" ")[rng.randint(0, 1):]
            text = "\n".join(lines)
        else:
            lines = text.split("\n")
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines))
            text = "\n".join(lines)
    return text


@pytest.mark.parametrize("name", sorted(APPSPECS) + ["snippets"])
def test_damaged_files_raise_only_yaml_subset_errors(name):
    rng = random.Random(name)
    for _attempt in range(300 if name in APPSPECS else 2000):
        text = mutate(APPSPECS[name] if name in APPSPECS else rng.choice(SNIPPETS), rng)
        try:
            loaded = load(text)
        except YamlSubsetError as error:
            assert error.line >= 1 and error.column >= 1
            continue
        if yaml is not None:
            try:
                expected = yaml.safe_load(text)
            except (yaml.YAMLError, ValueError):
                continue  # refused by PyYAML, loaded here: tabs inside flow collections, '=' and the like
            assert repr(loaded) == repr(expected), text


# What the CodeDeploy agent's safe load (Psych 4) reads: local tags and lone anchors as plain data

@pytest.mark.parametrize("text, expected", [
    ("a: !Ref Name\n", {"a": "Name"}),
    ("a: !Ref 300\n", {"a": 300}),  # typed as if untagged
    ("a: !Ref '300'\n", {"a": "300"}),
    ("a: !Ref\nb: 1\n", {"a": None, "b": 1}),
    ("a: !Sub |\n  x\n", {"a": "x\n"}),
    ("a: !If\n  - x\n  - y\n", {"a": ["x", "y"]}),
    ("a: !If\n- x\n", {"a": ["x"]}),
    ("a: !Tag # a comment\n  b: 1\n", {"a": {"b": 1}}),
    ("- !Ref k: v\n  k2: w\n", [{"k": "v", "k2": "w"}]),
    ("!Tag k: v\nk2: w\n", {"k": "v", "k2": "w"}),
    ("--- !Tag\nk: v\n", {"k": "v"}),
    ("!Tag\n- x\n", ["x"]),
    ("a: [!Ref b, !GetAtt [c, d], {e: !Ref f}]\n", {"a": ["b", ["c", "d"], {"e": "f"}]}),
    ("a: {b: !Ref , c: !Ref\n  }\n", {"a": {"b": None, "c": None}}),
    ("a: &x !t 5\nb: !t &y 6\n", {"a": 5, "b": 6}),
    ("&a key: value\n", {"key": "value"}),
    ("- &a\n  k: v\n", [{"k": "v"}]),
    ("a: [&x 1, &y]\n", {"a": [1, None]}),
    ("a: !Ref 2024-01-02\n", {"a": datetime.date(2024, 1, 2)}),
])
def test_local_tags_and_anchors_read_as_plain_data(text, expected):
    assert load(text) == expected


def test_a_local_tag_on_mode_keeps_it_as_written():
    assert load("mode: !m 0644\n", raw_scalar_keys=RAW) == {"mode": "0644"}


def test_a_byte_order_mark_is_skipped():
    assert load("\ufeffversion: 0.0\r\nos: linux\r\n") == {"version": 0.0, "os": "linux"}


def test_an_empty_list_is_kept():
    loaded = load("hooks:\n  BeforeInstall: []\n  AfterInstall:\n")
    assert loaded == {"hooks": {"BeforeInstall": [], "AfterInstall": None}}


# Integers: at most 4300 digits in any notation, so a long one is refused in linear time

@needs_pyyaml
def test_a_long_sexagesimal_integer_has_the_value_pyyaml_gives():
    text = "a: 1" + "".join(":{:02d}".format(part % 60) for part in range(2149)) + "\n"
    assert load(text) == yaml.safe_load(text)


def test_600_kb_of_sexagesimal_integers_load_correctly():
    entries = 600 * 1024 // 16
    loaded = load("".join("- 1:02:03:04:05\n" for _entry in range(entries)))
    assert loaded == [(((1 * 60 + 2) * 60 + 3) * 60 + 4) * 60 + 5] * entries


@pytest.mark.parametrize("text, digits", [
    ("a: 1" + ":30" * 200 * 1024 + "\n", 409601),  # 600 KB in one scalar
    ("a: " + "9" * 4301 + "\n", 4301),
    ("a: -0x" + "f" * 4301 + "\n", 4301),
    ("a: 0b" + "1" * 5000 + "\n", 5000),
])
def test_integers_of_more_than_4300_digits_are_refused(text, digits):
    with pytest.raises(YamlSubsetError) as caught:
        load(text)
    assert caught.value.message == "the integer {}... is written with {} digits; more than 4300 is not a number an" \
        " AppSpec uses (quote it if it is text)".format(text[3:23], digits)
    assert (caught.value.line, caught.value.column) == (1, 4)
    assert load(text.replace("a: ", "a: '", 1).replace("\n", "'\n")) == {"a": text[3:-1]}  # quoted, it is text
