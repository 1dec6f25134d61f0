# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Text that came from hosts, bundles or tags (script output, script paths, host names), made safe for where it is
shown: characters a reader would act on, or choke on, become visible escapes (``\\x1b``) rather than vanish."""
from __future__ import annotations

import re
import unicodedata
from typing import Any

# Unicode's bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): wherever text is shown,
# they reorder what follows them, so that a host name or a log line reads as something it does not hold.
BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
# C0 and C1 controls (tab aside), DEL and the bidirectional controls: on a terminal they move the cursor, erase or
# recolour lines, open hyperlinks (OSC 8), reorder text; a newline would start a line the report did not write.
TERMINAL_CONTROLS = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
READER_CONTROLS = re.compile(f"[{BIDI_CONTROLS}]")
# What XML 1.0 forbids (C0 controls but tab, newline and carriage return; surrogates; U+FFFE and U+FFFF): a JUnit
# report holding one is not well-formed, and CI rejects all of it; and the bidirectional controls, which reorder the
# text a CI page shows.
XML_FORBIDDEN = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff{BIDI_CONTROLS}]")
NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def escaped_character(match: re.Match) -> str:
    character = match.group()
    if character in NAMED_ESCAPES:
        return NAMED_ESCAPES[character]
    return f"\\x{ord(character):02x}" if ord(character) < 0x100 else f"\\u{ord(character):04x}"


def xml_text(value: Any) -> str:
    """``value`` as text an XML 1.0 document can hold."""
    return XML_FORBIDDEN.sub(escaped_character, str(value))


def terminal_text(value: Any) -> str:
    """``value`` as one line a terminal shows as it is."""
    return TERMINAL_CONTROLS.sub(escaped_character, str(value))


def reader_text(value: Any) -> str:
    """``value`` as text a page shows in the order it holds (the bidirectional controls as escapes)."""
    return READER_CONTROLS.sub(escaped_character, str(value))


def terminal_width(text: str) -> int:
    """The columns ``text`` takes on a terminal: East Asian wide characters take two, combining marks and format
    characters (zero-width joiners) none."""
    return sum(0 if unicodedata.combining(character) or unicodedata.category(character) in ("Mn", "Me", "Cf")
               else 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1 for character in text)


def padded(text: str, width: int) -> str:
    """``text`` with spaces after it to fill ``width`` terminal columns."""
    return text + " " * max(width - terminal_width(text), 0)
