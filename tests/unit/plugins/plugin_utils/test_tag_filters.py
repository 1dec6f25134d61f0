# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CodeDeploy's tag matching (docs/codedeploy-service.md, 2) and the server-side filters derived from it."""
from __future__ import annotations

import itertools
import random

import pytest

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.tag_filters import (
    KEY_AND_VALUE,
    KEY_ONLY,
    VALUE_ONLY,
    TagFilter,
    TagFilterError,
    TagSelector,
    api_tag_selector,
    describe_instances_filters,
    parse_tag_filter,
    parse_tag_filters,
    parse_tag_set,
)


def kv(key, value):
    return {"key": key, "value": value, "type": "KEY_AND_VALUE"}


# docs/codedeploy-service.md 2, Example 4: three tag groups, all KEY_AND_VALUE.
EXAMPLE_4 = parse_tag_set([
    [kv("Environment", "Beta"), kv("Environment", "Staging")],
    [kv("Region", "North"), kv("Region", "South"), kv("Region", "East")],
    [kv("Type", "t2.medium"), kv("Type", "t2.large")],
], "ec2_tag_set")


@pytest.mark.parametrize("tags, included", [
    ({"Environment": "Beta", "Region": "North", "Type": "t2.medium"}, True),
    ({"Environment": "Staging", "Region": "East", "Type": "t2.large"}, True),
    ({"Environment": "Beta", "Region": "West", "Type": "t2.medium"}, False),
    ({"Environment": "Staging", "Region": "East", "Type": "t2.micro"}, False),
    ({"Environment": "Production", "Region": "South", "Type": "t2.large"}, False),
])
def test_example_4_needs_a_match_in_every_tag_group(tags, included):
    assert EXAMPLE_4.matches(tags) is included


def test_example_2_one_group_matches_any_of_its_tags_whatever_else_the_instance_has():
    selector = parse_tag_set([[kv("Region", "North"), kv("Region", "South"), kv("Region", "East")]], "s")
    assert selector.matches({"Region": "South", "Name": "anything", "Env": "x"})
    assert selector.matches({"Region": "East"})
    assert not selector.matches({"Region": "West", "Name": "North"})


def test_flat_filter_list_is_an_or():
    selector = parse_tag_filters([kv("Name", "A"), kv("Name", "B")], "ec2_tag_filters")
    assert selector.matches({"Name": "A"})
    assert selector.matches({"Name": "B", "Env": "prod"})
    assert not selector.matches({"Name": "C"})
    assert not selector.matches({})


def test_key_only_matches_the_key_whatever_its_value():
    selector = parse_tag_filters([{"key": "Role", "type": "KEY_ONLY"}], "f")
    assert selector.matches({"Role": "web"})
    assert selector.matches({"Role": ""})
    assert not selector.matches({"role": "web"})
    assert not selector.matches({"Name": "Role"})


def test_value_only_matches_the_value_under_any_key():
    selector = parse_tag_filters([{"value": "prod", "type": "VALUE_ONLY"}], "f")
    assert selector.matches({"Env": "prod"})
    assert selector.matches({"Stage": "prod"})
    assert not selector.matches({"prod": "yes"})
    assert not selector.matches({"Env": "Prod"})


def test_key_and_value_must_be_on_the_same_tag_and_is_case_sensitive():
    selector = parse_tag_filters([kv("Env", "prod")], "f")
    assert selector.matches({"Env": "prod"})
    assert not selector.matches({"Env": "staging", "Stage": "prod"})
    assert not selector.matches({"env": "prod"})
    assert not selector.matches({"Env": "PROD"})


def test_the_issue_example_tag_set_mixes_key_and_value_with_key_only():
    selector = parse_tag_set([[kv("Env", "prod")], [{"key": "Role", "type": "KEY_ONLY"}]], "s")
    assert selector.matches({"Env": "prod", "Role": "db"})
    assert not selector.matches({"Env": "prod"})
    assert not selector.matches({"Env": "staging", "Role": "db"})


def test_empty_selectors_select_nothing():
    assert not parse_tag_filters([], "f").matches({"Env": "prod"})
    assert not TagSelector().matches({"Env": "prod"})


def test_type_follows_from_the_keys_given_when_left_out():
    assert parse_tag_filter({"key": "Env", "value": "prod"}, "f") == TagFilter(KEY_AND_VALUE, "Env", "prod")
    assert parse_tag_filter({"key": "Env"}, "f") == TagFilter(KEY_ONLY, "Env")
    assert parse_tag_filter({"value": "prod"}, "f") == TagFilter(VALUE_ONLY, value="prod")


def test_an_empty_value_is_a_value():
    selector = parse_tag_filters([kv("Env", "")], "f")
    assert selector.matches({"Env": ""})
    assert not selector.matches({"Env": "prod"})


@pytest.mark.parametrize("data, where, message", [
    ({"key": "A", "value": "b", "type": "KEY_VALUE"}, "f.type",
     "'KEY_VALUE' is not one of KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE"),
    ({"key": "A", "Value": "b"}, "f.Value", "unknown key: use key, value, type"),
    ({"type": "KEY_AND_VALUE", "value": "b"}, "f.key", "is required with type KEY_AND_VALUE"),
    ({"type": "KEY_AND_VALUE", "key": "A"}, "f.value", "is required with type KEY_AND_VALUE"),
    ({"type": "KEY_ONLY", "key": "A", "value": "b"}, "f.value",
     "is not used with type KEY_ONLY: remove it, or use KEY_AND_VALUE"),
    ({"type": "VALUE_ONLY", "key": "A", "value": "b"}, "f.key",
     "is not used with type VALUE_ONLY: remove it, or use KEY_AND_VALUE"),
    ({"key": "Tier", "value": 1}, "f.value", "must be a string, not 1 (quote it)"),
    ({}, "f", "needs a key, a value or both"),
    ("Env=prod", "f", "must be a mapping with key, value and type, not 'Env=prod'"),
])
def test_bad_filters_name_the_key(data, where, message):
    with pytest.raises(TagFilterError) as error:
        parse_tag_filter(data, "f")
    assert (error.value.where, error.value.message) == (where, message)


def test_more_than_three_tag_groups_is_the_services_limit():
    with pytest.raises(TagFilterError) as error:
        parse_tag_set([[kv("A", "1")], [kv("B", "1")], [kv("C", "1")], [kv("D", "1")]], "dg.ec2_tag_set")
    assert str(error.value) == "dg.ec2_tag_set: has 4 tag groups; the maximum allowed limit is 3"


def test_tag_set_errors_point_into_the_nested_lists():
    with pytest.raises(TagFilterError) as error:
        parse_tag_set([[kv("A", "1")], [kv("B", "1"), {"key": "C", "type": "BOGUS"}]], "s")
    assert error.value.where == "s[1][1].type"
    with pytest.raises(TagFilterError, match=r"^s\[0\]: is an empty tag group"):
        parse_tag_set([[]], "s")
    with pytest.raises(TagFilterError, match="must be a list of tag groups"):
        parse_tag_set([kv("A", "1")], "s")


def test_api_shapes_become_the_same_selectors():
    filters = [{"Key": "Name", "Value": "A", "Type": "KEY_AND_VALUE"}, {"Key": "Role", "Value": "", "Type": "KEY_ONLY"}]
    assert api_tag_selector(filters, None) == TagSelector(((TagFilter(KEY_AND_VALUE, "Name", "A"),
                                                            TagFilter(KEY_ONLY, "Role")),))
    tag_set = [[{"Key": "Env", "Value": "prod", "Type": "KEY_AND_VALUE"}], [{"Value": "x", "Type": "VALUE_ONLY"}]]
    assert api_tag_selector(None, tag_set) == TagSelector(((TagFilter(KEY_AND_VALUE, "Env", "prod"),),
                                                           (TagFilter(VALUE_ONLY, value="x"),)))
    assert not api_tag_selector([], None)


# ----- server-side filters -----------------------------------------------------------------------------------
def ec2_passes(filters, tags):
    """EC2's DescribeInstances semantics: filters ANDed, values of one filter ORed."""
    for entry in filters:
        name, values = entry["Name"], set(entry["Values"])
        if name.startswith("tag:"):
            ok = tags.get(name[4:]) in values
        elif name == "tag-key":
            ok = bool(values & set(tags))
        elif name == "tag-value":
            ok = bool(values & set(tags.values()))
        else:
            raise AssertionError(name)
        if not ok:
            return False
    return True


def test_one_key_across_many_groups_becomes_one_tag_filter():
    selectors = [parse_tag_set([[kv("App", app)], [kv("Env", env)]], "s")
                 for app, env in itertools.product(["a", "b"], ["prod", "test"])]
    assert describe_instances_filters(selectors) == [{"Name": "tag:App", "Values": ["a", "b"]},
                                                     {"Name": "tag:Env", "Values": ["prod", "test"]}]


def test_different_keys_fall_back_to_tag_key_and_value_only_to_tag_value():
    by_keys = [parse_tag_filters([kv("Name", "A")], "f"), parse_tag_filters([{"key": "Role"}], "f")]
    assert describe_instances_filters(by_keys) == [{"Name": "tag-key", "Values": ["Name", "Role"]}]
    by_values = [parse_tag_filters([kv("Name", "A")], "f"), parse_tag_filters([{"value": "B"}], "f")]
    assert describe_instances_filters(by_values) == [{"Name": "tag-value", "Values": ["A", "B"]}]
    mixed = [parse_tag_filters([{"key": "Role"}], "f"), parse_tag_filters([{"value": "B"}], "f")]
    assert describe_instances_filters(mixed) == []


def test_wildcards_are_not_sent_to_ec2():
    assert describe_instances_filters([parse_tag_filters([kv("Name", "web-*")], "f")]) == [
        {"Name": "tag-key", "Values": ["Name"]}]


def test_server_side_filters_never_drop_a_matching_instance():
    """For random selectors and instances: whatever any selector matches passes the derived filters."""
    rng = random.Random(7)
    keys, values = ["A", "B", "C"], ["1", "2", "3"]

    def random_filter():
        kind = rng.choice([KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE])
        return TagFilter(kind, rng.choice(keys) if kind != VALUE_ONLY else None,
                         rng.choice(values) if kind != KEY_ONLY else None)

    def random_selector():
        return TagSelector(tuple(tuple(random_filter() for position in range(rng.randint(1, 3)))
                                 for group in range(rng.randint(1, 3))))

    checked = 0

    for trial in range(300):
        selectors = [random_selector() for selector in range(rng.randint(1, 4))]
        filters = describe_instances_filters(selectors)
        for instance in range(30):
            tags = {key: rng.choice(values) for key in keys if rng.random() < 0.6}
            if any(selector.matches(tags) for selector in selectors):
                checked += 1
                assert ec2_passes(filters, tags), (selectors, filters, tags)
    assert checked > 1000
