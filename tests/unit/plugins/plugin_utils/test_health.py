# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The minimum-healthy-hosts model against the service's documented and worked examples."""
from __future__ import annotations

import pytest

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.health import (
    MSG_NO_INSTANCES, DeploymentConfigError, MinimumHealthyHosts, Zone, ZonalConfig, batch_sizes, final_status,
    instance_health, must_stop, order_instances, plan_zones, refuse_start, refuse_zones, resolve_minimum_healthy_hosts,
    resolve_zonal_config, split_wave, split_wave_by_zone, wave_size, zonal_batch_sizes)


def simulate(instances: int, minimum: int, failing: set[int]) -> dict:
    """Run the wave algorithm the role runs over instances 1..N; ``failing`` instances fail."""
    names = list(range(1, instances + 1))
    size = wave_size(instances, minimum)
    status = {name: "Pending" for name in names}
    healthy_floor = instances
    failed = 0
    deferred: list[int] = []

    def run(batch):
        nonlocal failed, healthy_floor
        healthy_floor = min(healthy_floor, instances - failed - len(batch))
        for name in batch:
            status[name] = "Failed" if name in failing else "Succeeded"
            failed += name in failing

    def pending():
        return sum(1 for s in status.values() if s == "Pending")

    for index in range(0, instances, size):
        if must_stop(instances, minimum, failed, pending()):
            break
        start, later = split_wave(names[index:index + size], instances, minimum, failed)
        deferred += later
        run(start)
    for name in deferred:
        if must_stop(instances, minimum, failed, pending()):
            break
        start, _later = split_wave([name], instances, minimum, failed)
        run(start)
    for name in names:
        if status[name] == "Pending":
            status[name] = "Skipped"
    succeeded = sum(1 for s in status.values() if s == "Succeeded")
    stopped = any(s == "Skipped" for s in status.values())
    return {
        "status": "Failed" if stopped else final_status(minimum, succeeded),
        "succeeded": succeeded,
        "failed": failed,
        "skipped": sum(1 for s in status.values() if s == "Skipped"),
        "healthy_floor": healthy_floor,
        "ran": [n for n in names if status[n] != "Skipped"],
    }


def minimum_for(name, custom=None, instances=10):
    _name, rule = resolve_minimum_healthy_hosts(name, custom)
    return rule.count(instances)


@pytest.mark.parametrize("name, instances, expected", [
    ("CodeDeployDefault.OneAtATime", 10, 9),
    ("CodeDeployDefault.OneAtATime", 1, 0),
    ("CodeDeployDefault.HalfAtATime", 10, 5),
    ("CodeDeployDefault.HalfAtATime", 9, 5),
    ("CodeDeployDefault.AllAtOnce", 10, 0),
    (None, 4, 3),
])
def test_predefined_minimums(name, instances, expected):
    assert minimum_for(name, instances=instances) == expected


@pytest.mark.parametrize("custom, instances, minimum, in_flight", [
    ({"type": "HOST_COUNT", "value": 6}, 9, 6, 3),
    ({"type": "FLEET_PERCENT", "value": 40}, 9, 4, 5),
    ({"type": "FLEET_PERCENT", "value": 85}, 10, 9, 1),
    ({"type": "FLEET_PERCENT", "value": 75}, 9, 7, 2),
])
def test_custom_minimums_round_percent_up(custom, instances, minimum, in_flight):
    assert minimum_for(None, custom, instances) == minimum
    assert wave_size(instances, minimum) == in_flight


@pytest.mark.parametrize("custom, message", [
    ({"type": "FLEET_PERCENT", "value": 100}, "use 0 to 99"),
    ({"type": "HOST_COUNT", "value": -1}, "whole number of 0 or more"),
    ({"type": "PERCENT", "value": 5}, "HOST_COUNT or FLEET_PERCENT"),
    ({"type": "HOST_COUNT", "value": 1, "count": 1}, "unknown key\\(s\\) count: use type and value"),
])
def test_invalid_custom_minimums(custom, message):
    with pytest.raises(DeploymentConfigError, match=message):
        resolve_minimum_healthy_hosts(None, custom)


@pytest.mark.parametrize("name", ["CodeDeployDefault.HalfAtATime", "CodeDeployDefault.Fast"])
def test_a_custom_minimum_under_a_predefined_name_is_refused(name):
    with pytest.raises(DeploymentConfigError, match=(
            f"deployment configuration '{name}' is predefined, its minimum healthy hosts fixed: a custom "
            r"minimum_healthy_hosts needs a configuration name of its own \(not CodeDeployDefault\.\*\), or none "
            r"\(Custom\.FLEET_PERCENT\.75\)")):
        resolve_minimum_healthy_hosts(name, {"type": "FLEET_PERCENT", "value": 75})
    assert resolve_minimum_healthy_hosts("Web75", {"type": "FLEET_PERCENT", "value": 75})[0] == "Web75"


def test_unknown_config_name():
    with pytest.raises(DeploymentConfigError, match="unknown deployment configuration 'CodeDeployDefault.Fast'"):
        resolve_minimum_healthy_hosts("CodeDeployDefault.Fast", None)


def test_refusals_at_start():
    assert refuse_start(0, 0, "CodeDeployDefault.AllAtOnce").code == "NO_INSTANCES"
    assert refuse_start(0, 0, "x").message == MSG_NO_INSTANCES
    assert refuse_start(10, 10, "Custom").code == "HEALTH_CONSTRAINTS_INVALID"
    assert refuse_start(3, 3, "Custom").code == "HEALTH_CONSTRAINTS_INVALID"
    assert refuse_start(1, 1, "CodeDeployDefault.HalfAtATime").code == "HEALTH_CONSTRAINTS_INVALID"
    assert refuse_start(1, 0, "CodeDeployDefault.OneAtATime") is None


# Worked examples of docs/codedeploy-service.md, 1.4.
@pytest.mark.parametrize("failing, status, succeeded, skipped", [
    (set(), "Succeeded", 10, 0),
    ({1, 2}, "Succeeded", 8, 0),
    ({1, 2, 3, 4, 5}, "Failed", 0, 5),
])
def test_example_a_ten_instances_half_at_a_time(failing, status, succeeded, skipped):
    result = simulate(10, 5, failing)
    assert (result["status"], result["succeeded"], result["skipped"]) == (status, succeeded, skipped)
    assert result["healthy_floor"] >= 5


@pytest.mark.parametrize("failing, status, ran", [
    ({1}, "Succeeded", list(range(1, 10))),
    ({9}, "Succeeded", list(range(1, 10))),
    # After the failure of 1, waves start one instance each (1, 2 | 3 | 5 | 7 | 9) and 4, 6, 8 are deferred to
    # the final pass: 8 is the last instance to run, so its failure is the tolerated one.
    ({1, 8}, "Succeeded", list(range(1, 10))),
    ({1, 9}, "Failed", [1, 2, 3, 5, 7, 9]),
    ({1, 5}, "Failed", [1, 2, 3, 5]),
    ({2, 3}, "Failed", [1, 2, 3]),
])
def test_example_b_nine_instances_fleet_percent_75(failing, status, ran):
    result = simulate(9, 7, failing)
    assert result["status"] == status
    assert result["ran"] == ran
    assert result["healthy_floor"] >= 7


@pytest.mark.parametrize("failing, status, skipped", [
    ({1}, "Failed", 2),
    ({2}, "Failed", 1),
    ({3}, "Succeeded", 0),
])
def test_example_c_three_instances_host_count_2(failing, status, skipped):
    result = simulate(3, 2, failing)
    assert (result["status"], result["skipped"]) == (status, skipped)


@pytest.mark.parametrize("failing, status", [(set(), "Succeeded"), ({1}, "Failed")])
def test_example_d_one_instance(failing, status):
    assert simulate(1, 0, failing)["status"] == status


def test_all_at_once_needs_one_success():
    assert simulate(4, 0, {1, 2, 3})["status"] == "Succeeded"
    assert simulate(4, 0, {1, 2, 3, 4})["status"] == "Failed"


def test_host_count_8_of_10_tolerates_a_second_failure_only_on_the_last_instance():
    assert simulate(10, 8, {1, 10})["status"] == "Succeeded"
    assert simulate(10, 8, {1, 4})["status"] == "Failed"


def test_split_wave_defers_what_would_break_the_minimum():
    assert split_wave(["a", "b", "c", "d", "e"], 10, 5, 2) == (["a", "b", "c"], ["d", "e"])
    assert split_wave(["a"], 3, 2, 1) == ([], ["a"])


def test_order_unhealthy_then_unknown_old_current_with_explicit_first():
    health = {"a": "Current", "b": "Old", "c": "Unhealthy", "d": "Unknown"}
    assert order_instances(["a", "b", "c", "d"], health) == ["c", "d", "b", "a"]
    assert order_instances(["a", "b", "c", "d"], health, ["a"]) == ["a", "c", "d", "b"]


def test_an_instance_named_twice_in_the_explicit_order_is_deployed_once():
    assert order_instances(["a", "b", "c"], {}, ["c", "c", "a"]) == ["c", "a", "b"]


@pytest.mark.parametrize("succeeded, revision, group_revision, health", [
    (None, None, None, "Unhealthy"),
    (False, "r1", "r1", "Unhealthy"),
    (True, None, "r1", "Unknown"),
    (True, "r0", "r1", "Old"),
    (True, "r1", "r1", "Current"),
])
def test_instance_health(succeeded, revision, group_revision, health):
    assert instance_health(succeeded, revision, group_revision) == health


def test_minimum_never_negative():
    assert MinimumHealthyHosts("ONE_AT_A_TIME", 1).count(0) == 0


# ----- zonal configuration -------------------------------------------------------------------------------------
def test_zonal_config_defaults():
    assert resolve_zonal_config({}) is None
    assert resolve_zonal_config(None) is None
    assert resolve_zonal_config({"monitor_duration_in_seconds": 60}) == ZonalConfig(
        MinimumHealthyHosts("FLEET_PERCENT", 0), 60, 60)
    assert resolve_zonal_config({"first_zone_monitor_duration_in_seconds": 600,
                                 "minimum_healthy_hosts_per_zone": {"type": "HOST_COUNT", "value": 50}}) == ZonalConfig(
        MinimumHealthyHosts("HOST_COUNT", 50), 0, 600)


@pytest.mark.parametrize("config, message", [
    ({"monitor_duration": 5},
     "zonal_config has unknown key(s) monitor_duration: use minimum_healthy_hosts_per_zone, "
     "monitor_duration_in_seconds, first_zone_monitor_duration_in_seconds"),
    ({"monitor_duration_in_seconds": -1},
     "zonal_config.monitor_duration_in_seconds must be a whole number of seconds, 0 or more, not -1"),
    ({"first_zone_monitor_duration_in_seconds": "60"},
     "zonal_config.first_zone_monitor_duration_in_seconds must be a whole number of seconds, 0 or more, not '60'"),
    ({"monitor_duration_in_seconds": True},
     "zonal_config.monitor_duration_in_seconds must be a whole number of seconds, 0 or more, not True"),
    ({"minimum_healthy_hosts_per_zone": {"type": "PERCENT", "value": 5}},
     "zonal_config.minimum_healthy_hosts_per_zone.type must be HOST_COUNT or FLEET_PERCENT, not 'PERCENT'"),
    ({"minimum_healthy_hosts_per_zone": 2},
     "zonal_config.minimum_healthy_hosts_per_zone must be a dict {type: HOST_COUNT|FLEET_PERCENT, value}, not 2"),
    (["az-1"], "zonal_config must be a dict"),
])
def test_invalid_zonal_configs(config, message):
    with pytest.raises(DeploymentConfigError) as raised:
        resolve_zonal_config(config)
    assert str(raised.value).startswith(message)


def test_zones_sorted_the_unnamed_zone_last_keeping_the_order_within_each():
    zones = plan_zones(["c1", "n1", "a1", "c2", "a2"], {"c1": "us-c", "a1": "us-a", "c2": "us-c", "a2": "us-a"},
                       MinimumHealthyHosts("FLEET_PERCENT", 50))
    assert zones == [Zone("us-a", ("a1", "a2"), 1), Zone("us-c", ("c1", "c2"), 1), Zone("", ("n1",), 1)]
    assert refuse_zones(zones).message.startswith(
        "The deployment can't start because the minimum number of healthy instances per zone (1) is not available "
        "in zone (no zone): it has 1 instance(s)")
    assert refuse_zones(zones[:2]) is None


def test_zonal_batches_never_span_a_zone_and_are_capped_by_the_zone():
    zones = [Zone("a", tuple("abcde"), 2), Zone("b", tuple("fg"), 0), Zone("c", tuple("hij"), 1)]
    # N - M = 4: zone a (5, Mz 2) takes 3 at a time, b 2, c 2.
    assert zonal_batch_sizes(zones, 4) == [3, 2, 2, 2, 1]
    assert zonal_batch_sizes(zones, 1) == [1] * 10
    assert batch_sizes(9, 2) == [2, 2, 2, 2, 1]
    assert batch_sizes(0, 3) == []


def test_split_by_zone_applies_both_rules():
    zone_of = {"a1": "a", "a2": "a", "a3": "a", "b1": "b"}
    assert split_wave_by_zone(["a1", "a2", "a3"], 5, {"a": 2}, zone_of) == (["a1", "a2"], ["a3"])
    assert split_wave_by_zone(["a1", "a2", "a3"], 1, {"a": 2}, zone_of) == (["a1"], ["a2", "a3"])
    assert split_wave_by_zone(["a1", "b1"], 5, {"a": 0, "b": 1}, zone_of) == (["b1"], ["a1"])
    assert split_wave_by_zone(["a1"], 0, {"a": 3}, zone_of) == ([], ["a1"])
