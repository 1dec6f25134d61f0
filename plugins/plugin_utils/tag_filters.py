# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CodeDeploy's deployment-group tag matching (docs/codedeploy-service.md, 2), as pure functions.

A flat filter list (``ec2TagFilters``, ``onPremisesInstanceTagFilters``) selects an instance that matches ANY
filter. A tag set (``ec2TagSet``, ``onPremisesTagSet``) is at most three tag groups: an instance must match
at least one filter of EVERY group. ``KEY_ONLY`` needs the key with any value, ``VALUE_ONLY`` any key with the
value, ``KEY_AND_VALUE`` both on one tag. Keys and values compare exactly (case-sensitive), as EC2 tags do.

:func:`describe_instances_filters` derives EC2 ``DescribeInstances`` filters that return a superset of the
instances several selectors match, so that one query per region serves every deployment group; the exact
matching above then runs on the result.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import KeyPathError

KEY_ONLY = "KEY_ONLY"
VALUE_ONLY = "VALUE_ONLY"
KEY_AND_VALUE = "KEY_AND_VALUE"
FILTER_TYPES = (KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE)
MAX_TAG_GROUPS = 3
FILTER_KEYS = ("key", "value", "type")


class TagFilterError(KeyPathError):
    """A tag filter or tag set that the service would refuse; ``where`` is the key path, ``message`` the reason."""


@dataclass(frozen=True)
class TagFilter:
    type: str
    key: Optional[str] = None
    value: Optional[str] = None

    def matches(self, tags: Mapping[str, str]) -> bool:
        if self.type == KEY_ONLY:
            return self.key in tags
        if self.type == VALUE_ONLY:
            return self.value in tags.values()
        return self.key in tags and tags[self.key] == self.value


@dataclass(frozen=True)
class TagSelector:
    """What one deployment group selects by tags: a tag set, i.e. tag groups ANDed, filters of a group ORed.

    A flat filter list is the tag set with one group. No group at all selects nothing.
    """

    groups: tuple[tuple[TagFilter, ...], ...] = ()

    def matches(self, tags: Mapping[str, str]) -> bool:
        return bool(self.groups) and all(any(f.matches(tags) for f in group) for group in self.groups)

    def __bool__(self) -> bool:
        return bool(self.groups)


def parse_tag_filter(data: Any, where: str) -> TagFilter:
    """One filter written as ``{key, value, type}``; ``type`` may be left out when ``key``/``value`` say it."""
    if not isinstance(data, Mapping):
        raise TagFilterError(where, f"must be a mapping with key, value and type, not {data!r}")
    unknown = sorted(str(k) for k in data if k not in FILTER_KEYS)
    if unknown:
        raise TagFilterError(f"{where}.{unknown[0]}", f"unknown key: use {', '.join(FILTER_KEYS)}")
    key, value = data.get("key"), data.get("value")
    for name, text in (("key", key), ("value", value)):
        if text is not None and not isinstance(text, str):
            raise TagFilterError(f"{where}.{name}", f"must be a string, not {text!r} (quote it)")
    kind = data.get("type") or _implied_type(key, value, where)
    if kind not in FILTER_TYPES:
        raise TagFilterError(f"{where}.type", f"{kind!r} is not one of {', '.join(FILTER_TYPES)}")
    if kind in (KEY_ONLY, KEY_AND_VALUE) and not key:
        raise TagFilterError(f"{where}.key", f"is required with type {kind}")
    if kind in (VALUE_ONLY, KEY_AND_VALUE) and value is None:
        raise TagFilterError(f"{where}.value", f"is required with type {kind}")
    if kind == KEY_ONLY and value is not None:
        raise TagFilterError(f"{where}.value", "is not used with type KEY_ONLY: remove it, or use KEY_AND_VALUE")
    if kind == VALUE_ONLY and key is not None:
        raise TagFilterError(f"{where}.key", "is not used with type VALUE_ONLY: remove it, or use KEY_AND_VALUE")
    return TagFilter(kind, key if kind != VALUE_ONLY else None, value if kind != KEY_ONLY else None)


def _implied_type(key: Optional[str], value: Optional[str], where: str) -> str:
    if key is not None and value is not None:
        return KEY_AND_VALUE
    if key is not None:
        return KEY_ONLY
    if value is not None:
        return VALUE_ONLY
    raise TagFilterError(where, "needs a key, a value or both")


def parse_tag_filters(data: Any, where: str) -> TagSelector:
    """A flat filter list: an instance matching any filter is selected."""
    if not isinstance(data, list):
        raise TagFilterError(where, "must be a list of filters {key, value, type}")
    filters = tuple(parse_tag_filter(item, f"{where}[{index}]") for index, item in enumerate(data))
    return TagSelector((filters,) if filters else ())


def parse_tag_set(data: Any, where: str) -> TagSelector:
    """A tag set: a list of at most three tag groups, each a non-empty list of filters."""
    if not isinstance(data, list) or not all(isinstance(group, list) for group in data):
        raise TagFilterError(where, "must be a list of tag groups, each a list of filters {key, value, type}")
    if len(data) > MAX_TAG_GROUPS:
        raise TagFilterError(where, f"has {len(data)} tag groups; the maximum allowed limit is {MAX_TAG_GROUPS}")
    groups = []
    for index, group in enumerate(data):
        if not group:
            raise TagFilterError(f"{where}[{index}]", "is an empty tag group: give at least one filter or remove it")
        groups.append(tuple(parse_tag_filter(item, f"{where}[{index}][{position}]")
                            for position, item in enumerate(group)))
    return TagSelector(tuple(groups))


def api_tag_filter(data: Mapping[str, Any]) -> TagFilter:
    """A filter as the CodeDeploy API returns it (``{Key, Value, Type}``); fields the type ignores are dropped."""
    kind = data.get("Type") or _implied_type(data.get("Key"), data.get("Value"), "tag filter")
    return TagFilter(kind, data.get("Key") if kind != VALUE_ONLY else None,
                     data.get("Value", "") if kind != KEY_ONLY else None)


def api_tag_selector(filters: Optional[Sequence[Mapping[str, Any]]],
                     tag_set: Optional[Sequence[Sequence[Mapping[str, Any]]]]) -> TagSelector:
    """The selector of an API deployment group from its flat filters or its tag set list (one is empty)."""
    if tag_set:
        return TagSelector(tuple(tuple(api_tag_filter(f) for f in group) for group in tag_set if group))
    if filters:
        return TagSelector((tuple(api_tag_filter(f) for f in filters),))
    return TagSelector()


# ----- server-side filters ----------------------------------------------------------------------------------
# For each EC2 filter name, the values a filter implies about any instance it matches: a tag ``K=V`` matches
# ``tag:K`` = V, ``tag-key`` = K and ``tag-value`` = V.
def _implied(tag_filter: TagFilter) -> dict[str, str]:
    if tag_filter.type == KEY_ONLY:
        return {"tag-key": tag_filter.key or ""}
    if tag_filter.type == VALUE_ONLY:
        return {"tag-value": tag_filter.value or ""}
    return {f"tag:{tag_filter.key}": tag_filter.value or "", "tag-key": tag_filter.key or "",
            "tag-value": tag_filter.value or ""}


def _disjunction_bounds(filters: Sequence[TagFilter]) -> dict[str, frozenset[str]]:
    """Filter names every filter of an OR constrains, with the union of their values."""
    implied = [_implied(f) for f in filters]
    names = set(implied[0]).intersection(*implied[1:]) if implied else set()
    return {name: frozenset(values[name] for values in implied) for name in names}


def _selector_bounds(selector: TagSelector) -> dict[str, frozenset[str]]:
    """Filter names a tag set constrains; every group's constraint holds (AND).

    An instance has one value per tag key, so two bounds on ``tag:K`` intersect; ``tag-key`` and ``tag-value``
    only ask for SOME tag in the set, so two such bounds do not intersect, and the smaller one is kept.
    """
    bounds: dict[str, frozenset[str]] = {}
    for group in selector.groups:
        for name, values in _disjunction_bounds(group).items():
            if name not in bounds:
                bounds[name] = values
            elif name.startswith("tag:"):
                bounds[name] = bounds[name] & values
            elif len(values) < len(bounds[name]):
                bounds[name] = values
    return bounds


def describe_instances_filters(selectors: Sequence[TagSelector]) -> list[dict[str, Any]]:
    """EC2 tag filters (ANDed by EC2) that every instance matched by ANY of ``selectors`` passes.

    A filter name is used when every selector constrains it; its values are the union over the selectors.
    ``tag:K`` filters are the most selective, so when there is one, ``tag-key``/``tag-value`` are not sent.
    The result may let through instances no selector matches (never the reverse): match them afterwards.
    Values containing EC2's wildcards (``*``, ``?``) or its escape (backslash) are left to the exact matching.
    """
    if not selectors:
        return []
    per_selector = [_selector_bounds(selector) for selector in selectors]
    shared = set(per_selector[0]).intersection(*per_selector[1:])
    filters = []
    for name in sorted(shared):
        values = sorted(set().union(*(bounds[name] for bounds in per_selector)))
        if values and not any(_is_pattern(value) for value in values):
            filters.append({"Name": name, "Values": values})
    by_key = [f for f in filters if f["Name"].startswith("tag:")]
    return by_key or filters


def _is_pattern(value: str) -> bool:
    return any(char in value for char in "*?\\")
