# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_flow import bundle_plan, host_results

REVISION = {"source": "s3", "sha256": "ab" * 32, "bundle_type": "zip", "appspec": {"version": 0.0},
            "bundle_env": {"BUNDLE_COMMIT": None}, "host_bundle_path": "/root/g/d-1/bundle.tar"}
STORE = "/opt/codedeploy-agent/deployment-root/fleetops-bundles"


def test_the_bundle_is_pushed_from_the_fetched_copy_to_the_hosts_store_by_sha256(tmp_path):
    plan = bundle_plan(REVISION, "/opt/codedeploy-agent/deployment-root", str(tmp_path), "/cache/x.zip", None)
    assert plan["bundle"] == {"controller_path": "/cache/x.zip", "host_path": f"{STORE}/{'ab' * 32}.zip",
                              "recorded_path": "/root/g/d-1/bundle.tar", "sha256": "ab" * 32, "bundle_type": "zip",
                              "pull": None}
    assert plan["appspec"] == {"version": 0.0} and plan["bundle_env"] == {"BUNDLE_COMMIT": None}


def test_a_rollback_pushes_the_cached_bundle_or_else_takes_the_recorded_one(tmp_path):
    cached = tmp_path / f"{'ab' * 32}.zip"
    assert bundle_plan(REVISION, "/r", str(tmp_path), None, None)["bundle"]["controller_path"] is None
    cached.write_bytes(b"zip")
    assert bundle_plan(REVISION, "/r", str(tmp_path), None, None)["bundle"]["controller_path"] == str(cached)


def test_a_phase_without_a_revision_installs_nothing(tmp_path):
    plan = bundle_plan(None, "/r", str(tmp_path), None, None)
    assert plan["bundle"]["sha256"] is None and plan["bundle"]["host_path"] is None and plan["appspec"] == {}


def test_pull_goes_with_the_bundle(tmp_path):
    pull = {"url": "https://example.com/a.zip"}
    assert bundle_plan(REVISION, "/r", str(tmp_path), "/c/a.zip", pull)["bundle"]["pull"] == pull


def test_a_host_without_a_result_is_none():
    assert host_results(["h1", "h2"], {"h1": {"status": "Succeeded"}}) == {"h1": {"status": "Succeeded"}, "h2": None}
