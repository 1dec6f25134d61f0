# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load the YAML that AppSpec files are written in, with the standard library only.

Target hosts run the modules with the system Python and no PyYAML, yet must read appspec.yml. This loader
covers what AppSpec files use: block mappings and sequences, plain, quoted and block (``|``, ``>``) scalars,
comments, flow collections on one or many lines (so JSON loads), ``---`` and ``...``. Scalars are typed as
PyYAML's SafeLoader types them (YAML 1.1: ``0644`` is 420, ``yes`` is True, ``2024-01-02`` is a date).

As the CodeDeploy agent's safe load (Psych 4) reads them, an anchor alone names nothing and is skipped, a local
tag such as ``!Ref`` is skipped and its value read as if untagged (``!ruby/...`` tags are refused), and an alias
is refused ("Unknown alias").
Other tags (``!!str``), complex and merge keys, directives and multiple documents are refused, like every
syntax error, with a YamlSubsetError naming the line and column; so are collections nested more than
MAX_DEPTH deep and integers written with more than MAX_INTEGER_DIGITS digits, which would otherwise exhaust
the stack or take time quadratic in their length.
"""
from __future__ import annotations

import datetime
import math
import re
from typing import Any, Callable, List, Optional, Tuple

__all__ = ["ALIAS_MESSAGE", "MAX_DEPTH", "MAX_INTEGER_DIGITS", "RUBY_TAG_MESSAGE", "YamlSubsetError",
           "integer_digits_error", "load"]

MAX_DEPTH = 64  # far beyond any AppSpec; keeps hostile input from exhausting the Python stack
# Python's own limit for int(): converting longer digit strings is quadratic (CVE-2020-10735).
MAX_INTEGER_DIGITS = 4300
# The agent's words for an alias ("Unknown alias: <name>"), with the fix; PyYAML's loader in appspec.py uses it too.
ALIAS_MESSAGE = ("Unknown alias: {0}. The CodeDeploy agent does not follow YAML aliases such as *{0}; write the"
                 " value out in full")
# The one kind of local tag the agent's safe load refuses instead of ignoring.
RUBY_TAG_MESSAGE = ("the YAML tag {0} names a Ruby class, which the CodeDeploy agent refuses to load (\"Tried to load"
                    " unspecified class\"); remove the tag")


class YamlSubsetError(ValueError):
    """A syntax error or an unsupported construct; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__("{} (line {}, column {})".format(message, line, column))
        self.message = message
        self.line = line
        self.column = column


def load(text: str, raw_scalar_keys: frozenset[str] = frozenset()) -> object:
    """The single YAML document in ``text`` as plain Python values (None for an empty document).

    The value of a key in ``raw_scalar_keys`` is returned as written when it is a plain scalar, so that
    ``mode: 0644`` gives "0644" instead of the YAML 1.1 octal integer 420.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    unreadable = _UNREADABLE.search(text)
    if unreadable:
        index = unreadable.start()
        raise YamlSubsetError("the character U+{:04X} is not allowed in YAML; remove it, or write it as an escape"
                              " in a double-quoted string".format(ord(unreadable.group())),
                              text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index))
    return _Parser(text, raw_scalar_keys).document()


# What YAML 1.1 forbids in a stream, and the Unicode line breaks, which this line-based loader does not break at.
_UNREADABLE = re.compile("[^\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# Scalar typing: the implicit types of YAML 1.1, with the patterns of PyYAML's SafeLoader.
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = re.compile(r"yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF")
_BOOL_VALUES = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}
_INT = re.compile(r"[-+]?(?:0b[01_]+|0[0-7_]+|0|[1-9][0-9_]*(?::[0-5]?[0-9])*|0x[0-9a-fA-F_]+)")
_FLOAT = re.compile(r"""[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)? | \.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
                    | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)""", re.X)
_TIMESTAMP = re.compile(r"""(?P<year>[0-9]{4})-(?P<month>[0-9]{1,2})-(?P<day>[0-9]{1,2})
                        (?:(?:[Tt]|[ \t]+)(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})
                        (?:\.(?P<fraction>[0-9]*))?
                        (?:[ \t]*(?P<tz>Z|(?P<sign>[-+])(?P<tz_hour>[0-9]{1,2})(?::(?P<tz_minute>[0-9]{2}))?))?)?""",
                        re.X)


def _typed_plain_scalar(text: str) -> object:
    """A plain scalar as SafeLoader types it; ValueError if it looks like a number or date but is not one."""
    if _NULL.fullmatch(text):
        return None
    if _BOOL.fullmatch(text):
        return _BOOL_VALUES[text.lower()]
    if _INT.fullmatch(text):
        return _int_value(text)
    if _FLOAT.fullmatch(text):
        return _float_value(text)
    timestamp = _TIMESTAMP.fullmatch(text)
    if timestamp and (timestamp.group("hour") or len(text) == 10):  # a date alone has two-digit months and days
        return _timestamp_value(timestamp)
    return text


def _sign_and_digits(text: str) -> Tuple[int, str]:
    digits = text.replace("_", "")
    return (-1 if digits[0] == "-" else 1), digits.lstrip("+-")


def _base_60(digits: str, number: Callable[[str], Any]) -> Any:
    total = number("0")
    for part in digits.split(":"):
        total = total * 60 + number(part)
    return total


def integer_digits_error(text: str) -> Optional[str]:
    """Why the integer scalar ``text`` is refused for its length, or None; a sexagesimal's parts count together."""
    digits = sum(character.isalnum() for character in text) - (2 if text.lstrip("+-")[:2] in ("0b", "0x") else 0)
    if digits <= MAX_INTEGER_DIGITS:
        return None
    return ("the integer {}... is written with {} digits; more than {} is not a number an AppSpec uses (quote it if it"
            " is text)".format(text[:20], digits, MAX_INTEGER_DIGITS))


def _int_value(text: str) -> int:
    too_long = integer_digits_error(text)
    if too_long:
        raise ValueError(too_long)
    sign, digits = _sign_and_digits(text)
    try:
        if digits[:2] in ("0b", "0x"):
            return sign * int(digits[2:], 2 if digits[1] == "b" else 16)
        if ":" in digits:
            return sign * _base_60(digits, int)
        return sign * int(digits, 8 if digits.startswith("0") else 10)  # YAML 1.1 octal: 0644 is 420
    except ValueError:  # "0x_", or more digits than int() accepts
        raise ValueError("'{}' is not a valid integer".format(text)) from None


def _float_value(text: str) -> float:
    sign, digits = _sign_and_digits(text.lower())
    if digits in (".inf", ".nan"):
        return sign * math.inf if digits == ".inf" else math.nan
    return sign * (_base_60(digits, float) if ":" in digits else float(digits))


def _timestamp_value(match: re.Match[str]) -> object:
    number = {name: int(value) for name, value in match.groupdict().items() if value and value.isdigit()}
    try:
        if "hour" not in number:
            return datetime.date(number["year"], number["month"], number["day"])
        offset = datetime.timedelta(hours=number.get("tz_hour", 0), minutes=number.get("tz_minute", 0))
        zone = datetime.timezone(-offset if match.group("sign") == "-" else offset) if match.group("tz") else None
        return datetime.datetime(number["year"], number["month"], number["day"], number["hour"], number["minute"],
                                 number["second"], int((match.group("fraction") or "")[:6].ljust(6, "0")), zone)
    except ValueError as error:
        raise ValueError("'{}' looks like a date but is not a valid one ({})".format(match.group(), error)) from None


# Parsing

_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r",
    "e": "\x1b", " ": " ", '"': '"', "\\": "\\", "/": "/", "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029",
}
_HEX_ESCAPE_LENGTHS = {"x": 2, "u": 4, "U": 8}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_INDICATORS = "-?:,[]{}#&*!|>'\"%@`"
_BLANK_OR_END = ("", " ", "\t")  # what must follow '-', ':' and '?' for them to be indicators
_NOT_A_KEY = object()
# A node's properties: a local tag ("!Ref", not "!!str" or "!e!x") and an anchor, each ended by a blank or the line.
_LOCAL_TAG = re.compile(r"![-0-9A-Za-z;/?:@&=+$_.~*'()%]*")
_ANCHOR_NAME = re.compile(r"[-0-9A-Za-z_]+")
_TAB_MESSAGE = "found a tab, which cannot start any token: YAML indents and separates with spaces, not tabs"

FlowOpener = Tuple[int, int, str]  # row and column of a '[' or '{', and the character that closes it


def _is_document_marker(line: str) -> bool:
    return line[:3] in ("---", "...") and line[3:4] in _BLANK_OR_END


class _Parser:
    """Recursive descent over lines; ``row`` and ``col`` (0-based) point at the next character to read."""

    def __init__(self, text: str, raw_scalar_keys: frozenset[str]) -> None:
        self.lines = text.split("\n")
        self.row = self.col = self.depth = 0
        self.raw_scalar_keys = raw_scalar_keys

    # Cursor

    def _line(self) -> str:
        return self.lines[self.row]

    def _peek(self, offset: int = 0) -> str:
        return self._line()[self.col + offset:self.col + offset + 1]

    def _error(self, message: str, row: Optional[int] = None, col: Optional[int] = None) -> YamlSubsetError:
        return YamlSubsetError(message, (self.row if row is None else row) + 1, (self.col if col is None else col) + 1)

    def _skip_spaces(self) -> None:
        while self._peek() == " ":
            self.col += 1
        if self._peek() == "\t":
            raise self._error(_TAB_MESSAGE)

    def _at_line_end(self) -> bool:
        return self._peek() in ("", "#")

    def _expect_line_end(self) -> None:
        self._skip_spaces()
        if self._peek() == ":":
            raise self._error("found ': ' after a complete value; quote the value if it contains ': '")
        if not self._at_line_end():
            raise self._error("expected the end of the line after the value, found {!r}".format(self._peek()))
        self.col = len(self._line())

    def _skip_to_content(self) -> None:
        """Moves past spaces, comments and line ends to the next token, or to the end of the text."""
        self._skip_spaces()
        while self._at_line_end() and self.row + 1 < len(self.lines):
            self.row, self.col = self.row + 1, 0
            self._skip_spaces()
        if self._at_line_end():
            self.col = len(self._line())

    def _at_end(self) -> bool:
        return self.row == len(self.lines) - 1 and self.col >= len(self._line())

    def _at_marker(self, marker: str) -> bool:
        return self.col == 0 and _is_document_marker(self._line()) and self._line().startswith(marker)

    def _content_indent(self) -> int:
        """The column of the token at the cursor (the first of its line), or -1 where the document ends."""
        return -1 if self._at_end() or self._at_marker("---") or self._at_marker("...") else self.col

    def _at_sequence_entry(self) -> bool:
        return self._peek() == "-" and self._peek(1) in _BLANK_OR_END

    def _enter_collection(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._error("collections are nested more than {} levels deep".format(MAX_DEPTH))

    # Document and block context

    def document(self) -> object:
        self._skip_to_content()
        if self._peek() == "%":
            raise self._error("YAML directives such as %YAML are not supported in an AppSpec; remove the line")
        if self._at_marker("---"):
            self.col = 3
            root = self._node_after_indicator(-1, raw=False)
        else:
            root = self._block_node(-1, raw=False)
        self._skip_to_content()
        while self._at_marker("..."):
            self.col = 3
            self._expect_line_end()
            self._skip_to_content()
        if self._at_marker("---"):
            raise self._error("found a second YAML document; an AppSpec file holds exactly one")
        if not self._at_end():
            raise self._error("found content outside the document's structure; check this line's indentation")
        return root

    def _node_after_indicator(self, indent: int, raw: bool) -> object:
        """The value after a key's ':' (or after '---'): on the same line, or on the lines below."""
        self._skip_spaces()
        self._skip_properties(in_flow=False)
        if not self._at_line_end():
            return self._inline_node(indent, raw)
        self._skip_to_content()
        # A list may sit at its key's own indentation ("files:\n- source: /").
        if self._content_indent() == indent and self._at_sequence_entry():
            return self._block_sequence(indent, indentless=True)
        return self._block_node(indent, raw)

    def _block_node(self, parent_indent: int, raw: bool) -> object:
        """The node on the following lines, which must be indented more than its parent; else None."""
        self._skip_to_content()
        if self._content_indent() <= parent_indent:
            return None
        return self._node_here(parent_indent, raw)

    def _node_here(self, parent_indent: int, raw: bool) -> object:
        """The node at the cursor, which is the first token of its line or follows '- '."""
        column = self.col
        if self._at_sequence_entry():
            return self._block_sequence(column, indentless=False)
        key = self._key_here()
        if key is not _NOT_A_KEY:
            return self._block_mapping(column, key)  # at the column of the key's properties, as PyYAML reads it
        if self._skip_properties(in_flow=False) and self._at_line_end():
            return self._block_node(parent_indent, raw)
        return self._inline_node(parent_indent, raw)

    def _inline_node(self, parent_indent: int, raw: bool) -> object:
        """A scalar or flow collection that starts at the cursor; a block scalar's header ends its line."""
        self._refuse_unsupported_start(in_flow=False)
        if self._at_sequence_entry():
            raise self._error("a list cannot start on the same line as its key; put its '- ' entries below the key")
        first, row, col = self._peek(), self.row, self.col
        if first in ("|", ">"):
            return self._block_scalar(parent_indent)
        if first in ("[", "{"):
            value = self._flow_collection()
            self._skip_spaces()
            if self._peek() == ":":
                raise self._complex_key_error(row, col)
        elif first in ("'", '"'):
            value = self._quoted_scalar()
        else:
            text = self._plain_scalar(parent_indent, in_flow=False)
            value = text if raw else self._typed(text, row, col)
        self._expect_line_end()
        return value

    def _block_mapping(self, indent: int, key: object) -> dict:
        self._enter_collection()
        mapping = {}
        while True:
            mapping[key] = self._node_after_indicator(indent, raw=self._is_raw_key(key))
            self._skip_to_content()
            found = self._content_indent()
            if found < indent:
                break
            if found > indent:
                raise self._bad_indentation(indent)
            if self._at_sequence_entry():
                raise self._error("found a '- ' list entry among mapping keys; indent the list under its key")
            key = self._key_here()
            if key is _NOT_A_KEY:
                self._refuse_unsupported_start(in_flow=False)
                raise self._error("expected a mapping entry ('key: value') at this indentation")
        self.depth -= 1
        return mapping

    def _key_here(self) -> object:
        """The one-line key at the cursor, consumed with its ':'; else _NOT_A_KEY, and the cursor stays."""
        start_row, start_col = self.row, self.col
        self._skip_properties(in_flow=False)
        row, col = self.row, self.col
        key: object = None
        plain_text: Optional[str] = None
        if self._peek() in ("'", '"') and self._closing_quote_on_line():
            key = self._quoted_scalar()
        elif self._plain_can_start(in_flow=False):
            plain_text = self._plain_segment(in_flow=False)
        else:
            self.row, self.col = start_row, start_col
            return _NOT_A_KEY
        self._skip_spaces()
        if self._peek() == ":" and self._peek(1) in _BLANK_OR_END:
            self.col += 1
            # Typed only now: the text may be the first line of a multi-line value instead.
            return key if plain_text is None else self._typed(plain_text, row, col)
        self.row, self.col = start_row, start_col
        return _NOT_A_KEY

    def _closing_quote_on_line(self) -> bool:
        line, quote, index = self._line(), self._peek(), self.col + 1
        while index < len(line):
            if line[index] == quote and not (quote == "'" and line[index + 1:index + 2] == "'"):
                return True
            index += 2 if line[index] in ("\\" if quote == '"' else "'") else 1  # skip \x and ''
        return False

    def _block_sequence(self, indent: int, indentless: bool) -> list:
        self._enter_collection()
        items = []
        while True:
            self.col += 1  # the '-'
            self._skip_spaces()
            items.append(self._block_node(indent, False) if self._at_line_end() else self._node_here(indent, False))
            self._skip_to_content()
            found = self._content_indent()
            if found == indent and self._at_sequence_entry():
                continue
            if found < indent or (found == indent and indentless):
                break
            if found > indent:
                raise self._bad_indentation(indent)
            raise self._error("expected a '- ' list entry at this indentation; a list and mapping keys cannot"
                              " share one level")
        self.depth -= 1
        return items

    def _skip_properties(self, in_flow: bool) -> bool:
        """Moves past a node's anchor and local tag, in either order; whether there were any.

        The agent's safe load reads a locally tagged node as if it had no tag, and an anchor only matters to
        aliases, which are refused. What is not a valid property stays for _refuse_unsupported_start.
        """
        seen = ""
        while self._peek() in ("!", "&") and self._peek() not in seen:
            pattern = _LOCAL_TAG if self._peek() == "!" else _ANCHOR_NAME
            match = pattern.match(self._line(), self.col + (self._peek() == "&"))
            end = match.end() if match else self.col
            after = self._line()[end:end + 1]
            if not match or not (after in ("", " ", "\t") or (in_flow and after in ",]}")):
                break
            if match.group().startswith("!ruby/"):
                raise self._error(RUBY_TAG_MESSAGE.format(match.group()))
            seen += self._peek()
            self.col = end
            while self._peek() == " " or (in_flow and self._peek() == "\t"):
                self.col += 1
        return bool(seen)

    def _refuse_unsupported_start(self, in_flow: bool) -> None:
        first = self._peek()
        if first == "*":
            name = _ANCHOR_NAME.match(self._line(), self.col + 1)
            raise self._error(ALIAS_MESSAGE.format(name.group() if name else ""))
        if first == "&":
            raise self._error("an anchor is '&' and a name of letters, digits, '-' and '_', then a space; a node has"
                              " at most one")
        if first == "!":
            raise self._error("the YAML tag {} is not supported in an AppSpec (local tags such as !Ref are read as"
                              " if absent, once per node); quote the value instead".format(
                                  self._line()[self.col:].split(" ", 1)[0][:40]))
        if first == "?" and (in_flow or self._peek(1) in _BLANK_OR_END):
            raise self._error("complex mapping keys ('? key') are not supported in an AppSpec")
        if first in ("%", "@", "`"):
            raise self._error("a value cannot start with {!r}, which YAML reserves; quote the value".format(first))

    def _bad_indentation(self, indent: int) -> YamlSubsetError:
        return self._error("bad indentation: this line starts at column {}, but the entries before it are at"
                           " column {}".format(self.col + 1, indent + 1))

    def _complex_key_error(self, row: int, col: int) -> YamlSubsetError:
        return self._error("complex mapping keys (a list or mapping as a key) are not supported in an AppSpec",
                           row, col)

    def _is_raw_key(self, key: object) -> bool:
        return isinstance(key, str) and key in self.raw_scalar_keys

    # Scalars

    def _typed(self, text: str, row: int, col: int) -> object:
        if text == "<<":
            raise self._error("YAML merge keys ('<<') are not supported in an AppSpec; quote '<<' if it is meant"
                              " literally", row, col)
        try:
            return _typed_plain_scalar(text)
        except ValueError as error:
            raise self._error(str(error), row, col) from None

    def _plain_can_start(self, in_flow: bool) -> bool:
        first, second = self._peek(), self._peek(1)
        if first in _BLANK_OR_END:
            return False
        if first not in _INDICATORS:
            return True
        # '-', '?' and ':' start a plain scalar when a non-space follows (in flow context only '-').
        return second not in _BLANK_OR_END and (first == "-" or (not in_flow and first in "?:"))

    def _plain_scalar(self, parent_indent: int, in_flow: bool) -> str:
        """A plain scalar, folded over continuation lines indented more than ``parent_indent``."""
        if not self._plain_can_start(in_flow):
            raise self._error("unexpected {!r}: a value cannot start with it; quote the value if the character is"
                              " meant literally".format(self._peek()))
        text = self._plain_segment(in_flow)
        while len(self._line().rstrip(" ")) <= self.col:  # only spaces are left on the line
            separator = self._plain_continuation(parent_indent, in_flow)
            segment = self._plain_segment(in_flow) if separator else ""
            if not segment:  # no continuation, or a line that starts with what ends a scalar, such as ']'
                break
            text += separator + segment
        return text

    def _plain_segment(self, in_flow: bool) -> str:
        """The part of a plain scalar on the current line, without trailing spaces."""
        line, start = self._line(), self.col
        end = index = start
        while index < len(line):
            char = line[index]
            if char == "\t" or (char == "#" and line[index - 1] == " ") or (in_flow and char in ",?[]{}"):
                break
            if char == ":" and (line[index + 1:index + 2] in _BLANK_OR_END or (in_flow and line[index + 1] in ",[]{}")):
                break
            index += 1
            if char != " ":
                end = index
        self.col = end
        return line[start:end]

    def _plain_continuation(self, parent_indent: int, in_flow: bool) -> str:
        """Moves to the next line of a multi-line plain scalar and returns what joins the lines; else ''."""
        row = self.row + 1
        while row < len(self.lines) and not _is_document_marker(self.lines[row]):
            content = self.lines[row].lstrip(" ")
            column = len(self.lines[row]) - len(content)
            # Comments end the scalar; a tab is reported where the next token is read.
            if content and (content[0] in "#\t" or (not in_flow and column <= parent_indent)):
                return ""
            if content:
                blank_lines = row - self.row - 1
                self.row, self.col = row, column
                return "\n" * blank_lines or " "
            row += 1
        return ""

    def _quoted_scalar(self) -> str:
        quote, start_row, start_col = self._peek(), self.row, self.col
        self.col += 1
        chunks, spaces = [], ""
        while True:
            char = self._peek()
            if char in (" ", "\t"):
                spaces += char
                self.col += 1
                continue
            if not char:  # spaces before a line break are dropped, and the break folds into a space
                chunks.append(self._quoted_line_break(False, start_row, start_col))
                spaces = ""
                continue
            chunks.append(spaces)
            spaces = ""
            if char == quote == "'" and self._peek(1) == "'":
                chunks.append("'")
                self.col += 2
            elif char == quote:
                self.col += 1
                return "".join(chunks)
            elif char == "\\" and quote == '"' and not self._peek(1):
                self.col += 1
                chunks.append(self._quoted_line_break(True, start_row, start_col))
            elif char == "\\" and quote == '"':
                chunks.append(self._escape_sequence())
            else:
                chunks.append(char)
                self.col += 1

    def _quoted_line_break(self, escaped: bool, start_row: int, start_col: int) -> str:
        """Moves to the next non-blank line of a quoted scalar; returns what the line break folds into."""
        blank_lines = 0
        while True:
            if self.row + 1 >= len(self.lines):
                raise self._error("this quoted string is never closed; add the closing {}"
                                  .format(self.lines[start_row][start_col]), start_row, start_col)
            self.row, self.col = self.row + 1, 0
            if _is_document_marker(self._line()):
                raise self._error("found a document marker ('---' or '...') inside a quoted string")
            content = self._line().lstrip(" \t")
            self.col = len(self._line()) - len(content)
            if content:
                return "\n" * blank_lines or ("" if escaped else " ")
            blank_lines += 1

    def _escape_sequence(self) -> str:
        code = self._peek(1)
        if code in _ESCAPES:
            self.col += 2
            return _ESCAPES[code]
        length = _HEX_ESCAPE_LENGTHS.get(code, 0)
        digits = self._line()[self.col + 2:self.col + 2 + length]
        if not length or len(digits) < length or not _HEX_DIGITS.issuperset(digits):
            raise self._error("invalid escape sequence in a double-quoted string; write a backslash as \\\\")
        if int(digits, 16) > 0x10FFFF:
            raise self._error("\\{}{} is not a Unicode character".format(code, digits))
        self.col += 2 + length
        return chr(int(digits, 16))

    def _block_scalar(self, parent_indent: int) -> str:
        """A literal (|) or folded (>) scalar; leaves the cursor at the start of the line after it."""
        folded = self._peek() == ">"
        self.col += 1
        chomping, increment = self._block_scalar_indicators()
        if self._peek() not in ("", " "):
            raise self._error("expected chomping (+ or -) or indentation (1-9) indicators after the block scalar's"
                              " | or >, found {!r}".format(self._peek()))
        self._expect_line_end()
        min_indent = max(parent_indent + 1, 1)
        indent = min_indent + increment - 1 if increment else max(min_indent, _auto_indent(self.lines, self.row + 1))
        text, next_row = _block_scalar_text(self.lines, self.row + 1, indent, folded, chomping)
        self.row = min(next_row, len(self.lines) - 1)
        self.col = 0 if next_row < len(self.lines) else len(self._line())
        return text

    def _block_scalar_indicators(self) -> Tuple[str, int]:
        chomping, increment = "clip", 0
        for _indicator in range(2):  # in either order
            char = self._peek()
            if char in ("+", "-") and chomping == "clip":
                chomping = "keep" if char == "+" else "strip"
            elif char in tuple("0123456789") and not increment:
                if char == "0":
                    raise self._error("a block scalar's indentation indicator must be 1-9, not 0")
                increment = int(char)
            else:
                break
            self.col += 1
        return chomping, increment

    # Flow context: any indentation, and tabs are allowed between tokens (so tab-indented JSON loads).

    def _flow_collection(self) -> Any:
        opener = (self.row, self.col, "}" if self._peek() == "{" else "]")
        self._enter_collection()
        self.col += 1
        result: Any = {} if opener[2] == "}" else []
        while True:
            self._skip_flow_space(opener)
            if self._peek() == opener[2]:
                break
            if opener[2] == "}":
                key, value = self._flow_mapping_entry(opener)
                result[key] = value
            else:
                result.append(self._flow_sequence_entry(opener))
            self._skip_flow_space(opener)
            if self._peek() == ",":
                self.col += 1
            elif self._peek() != opener[2]:
                raise self._error("expected ',' or {!r} in this flow collection, found {!r}"
                                  .format(opener[2], self._peek()))
        self.col += 1
        self.depth -= 1
        return result

    def _skip_flow_space(self, opener: FlowOpener) -> None:
        while True:
            while self._peek() in (" ", "\t"):
                self.col += 1
            if not self._at_line_end():
                return
            if self.row + 1 >= len(self.lines):
                raise self._error("this {!r} is never closed; add the closing {!r}".format(
                    self.lines[opener[0]][opener[1]], opener[2]), opener[0], opener[1])
            self.row, self.col = self.row + 1, 0
            if _is_document_marker(self._line()):
                raise self._error("found a document marker ('---' or '...') inside a flow collection")

    def _flow_sequence_entry(self, opener: FlowOpener) -> object:
        row, col = self.row, self.col
        node = self._flow_node(False, opener)
        self._skip_flow_space(opener)
        if self._peek() != ":":
            return node
        if isinstance(node, (list, dict)):
            raise self._complex_key_error(row, col)
        return {node: self._flow_value(node, row, opener)}  # a one-pair mapping: [key: value]

    def _flow_mapping_entry(self, opener: FlowOpener) -> Tuple[object, object]:
        row, col = self.row, self.col
        if self._peek() in ("[", "{"):
            raise self._complex_key_error(row, col)
        key = self._flow_node(False, opener)
        if isinstance(key, (list, dict)):  # a collection after the key's properties
            raise self._complex_key_error(row, col)
        self._skip_flow_space(opener)
        return key, (self._flow_value(key, row, opener) if self._peek() == ":" else None)

    def _flow_value(self, key: object, key_row: int, opener: FlowOpener) -> object:
        """The value after the ':' at the cursor."""
        if self.row != key_row:
            raise self._error("a mapping key and its ':' must be on the same line")
        self.col += 1
        self._skip_flow_space(opener)
        return None if self._peek() in (",", opener[2]) else self._flow_node(self._is_raw_key(key), opener)

    def _flow_node(self, raw: bool, opener: FlowOpener) -> object:
        if self._skip_properties(in_flow=True):
            self._skip_flow_space(opener)
            if self._peek() in (",", "]", "}"):
                return None  # an empty node with properties
        self._refuse_unsupported_start(in_flow=True)
        if self._peek() in ("[", "{"):
            return self._flow_collection()
        if self._peek() in ("'", '"'):
            return self._quoted_scalar()
        row, col = self.row, self.col
        text = self._plain_scalar(-1, in_flow=True)
        return text if raw else self._typed(text, row, col)


# Block scalar bodies

def _auto_indent(lines: List[str], row: int) -> int:
    """The indentation of a block scalar's first non-blank line, or more if blank lines before it are wider."""
    widest = 0
    while row < len(lines):
        content = lines[row].lstrip(" ")
        widest = max(widest, len(lines[row]) - len(content))
        if content:
            break
        row += 1
    return widest


def _block_scalar_text(lines: List[str], row: int, indent: int, folded: bool, chomping: str) -> Tuple[str, int]:
    """The value of the block scalar whose body starts at ``row``, and the row after its last line."""

    def is_content(at: int) -> bool:
        return at < len(lines) and len(lines[at]) > indent and lines[at].startswith(" " * indent)

    def blank_lines(at: int) -> int:  # lines that are blank at this indentation and end with a line break
        count = 0
        while at + count < len(lines) - 1 and len(lines[at + count]) <= indent and not lines[at + count].strip(" "):
            count += 1
        return count

    chunks = []
    blanks = blank_lines(row)
    row += blanks
    line_break = ""
    while is_content(row):
        text = lines[row][indent:]
        chunks.append("\n" * blanks + text)
        line_break = "\n" if row < len(lines) - 1 else ""
        blanks = blank_lines(row + 1)
        row += 1 + blanks
        if not is_content(row):
            break
        # Folding joins two lines that start without spaces; blank lines between them become the breaks.
        if folded and line_break and text[0] not in " \t" and lines[row][indent] not in " \t":
            chunks.append("" if blanks else " ")
        else:
            chunks.append(line_break)
    if chomping != "strip":
        chunks.append(line_break)
    if chomping == "keep":
        chunks.append("\n" * blanks)
    return "".join(chunks), row
