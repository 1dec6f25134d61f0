# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the operator reads: a OneAtATime deployment to three hosts whose ValidateService fails on one, rolled back
automatically, on Ansible's default output with the report callback, and in an AWX job's output (ansible-runner)."""
from __future__ import annotations

import json
import re

from support.awx import AWX, jobs_root
from support.deployments import deploy, deployment_vars, local, make_revision, records, statuses

ONE_AT_A_TIME = {"deployment_config_name": "CodeDeployDefault.OneAtATime"}
AUTO_ROLLBACK = {"auto_rollback": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}}
# The bound. The default callback prints every task that runs, three lines or more each; the deployment
# play's strategy (plugins/strategy/quiet_linear.py) does not show the includes that hand each host its task file at
# every wave, so a wave is two tasks (its instances' lifecycle, the record that opens the next wave). Measured for
# this case: 120 on the terminal, ansible-core's deprecation warning for a strategy plugin outside ansible.builtin
# included (2 lines), and 119 under ansible-runner. What was won: 478 lines at first, 185 with every include shown.
MOST_LINES = 120
# What an operator's terminal shows: deprecation warnings are on unless the operator turns them off.
OPERATOR_TERMINAL = {"ANSIBLE_DEPRECATION_WARNINGS": "1"}
# A task result printed after "=>" (JSON on the line, or opening a block of it).
TASK_RESULT = re.compile(r"^(fatal|failed|ok|changed): \[[^\]]+\]: .*=> (\{.*)$")
# What a result may hold and still read as a message.
MESSAGE_KEYS = {"changed", "msg"}


def screen_faults(output: str) -> list[str]:
    """What makes the output hard to read: too many lines, plays that match no host, raw task results."""
    lines = output.splitlines()
    faults = []
    if len(lines) > MOST_LINES:
        faults.append(f"{len(lines)} lines, more than {MOST_LINES}")
    faults += [f"a play that matches no host: {line}" for line in lines if "no hosts matched" in line]
    faults += [f"a raw task result: {line[:160]}…" for line in lines if is_raw_result(line)]
    faults += [f"an ignored failure: {line}" for line in lines if line.strip() == "...ignoring"]
    return faults


def is_raw_result(line: str) -> bool:
    """A task result printed whole: more than a message (a result's own keys), or JSON spread over lines."""
    found = TASK_RESULT.match(line)
    if not found:
        return False
    try:
        result = json.loads(found.group(2))
    except ValueError:
        return True
    return not (isinstance(result, dict) and set(result) <= MESSAGE_KEYS)


def first_deployment_then_failing_one(tmp_path):
    first = make_revision(tmp_path / "v1", "1")
    failing = make_revision(tmp_path / "v2", "2", fail_hosts=["fleet-h2"])
    return local(first), local(failing)


def assert_tells_the_story(output: str, ledger) -> None:
    """One line per wave, the failing host's event, script and log tail, the table, the code and the id."""
    _first, failed, rollback = records(ledger)
    assert statuses(failed)["fleet-h2"] == "Failed"
    assert rollback["status"] == "Succeeded"
    text = " ".join(output.split())
    assert "Wave 2/3: 1 instance, 0 succeeded, 1 failed" in text
    assert "fleet-h2 ValidateService (scripts/validate.sh)" in text
    assert "validation failed on fleet-h2" in text
    assert f"Deployment {failed['deployment_id']}" in text and "HEALTH_CONSTRAINTS" in text
    assert f"Deployment {rollback['deployment_id']}" in text
    assert re.search(r"fleet-h2\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=1", output), output


def test_a_failed_deployment_and_its_rollback_read_at_a_glance(fleet, tmp_path):
    three = fleet(3)
    ledger = tmp_path / "ledger"
    first, failing = first_deployment_then_failing_one(tmp_path)
    # An operator who wants to see every include: the same flow on ansible.builtin.linear, without its warning.
    shown = deploy(three, ledger, first, **ONE_AT_A_TIME, show_includes=True, env=OPERATOR_TERMINAL)
    assert shown.rc == 0, shown.output
    assert "included: " in shown.output and "DEPRECATION" not in shown.output, shown.output

    run = deploy(three, ledger, failing, **ONE_AT_A_TIME, **AUTO_ROLLBACK, env=OPERATOR_TERMINAL)

    assert run.rc != 0
    assert screen_faults(run.output) == [], run.output
    assert_tells_the_story(run.output, ledger)


def test_an_awx_job_reads_the_same(fleet, tmp_path):
    three = fleet(3)
    ledger = tmp_path / "ledger"
    first, failing = first_deployment_then_failing_one(tmp_path)
    with jobs_root() as root:
        controller = AWX(root, three.inventory, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
        assert controller.run("deploy.yml", deployment_vars(ledger, first, **ONE_AT_A_TIME)).rc == 0

        job = controller.run("deploy.yml", deployment_vars(ledger, failing, **ONE_AT_A_TIME, **AUTO_ROLLBACK))

    assert job.rc != 0
    assert screen_faults(job.stdout) == [], job.stdout
    assert_tells_the_story(job.stdout, ledger)


def test_an_include_that_fails_is_shown_under_its_own_task(fleet, tmp_path):
    three = fleet(3)
    first, _failing = first_deployment_then_failing_one(tmp_path)
    # The deployment play's first task is the include of the phase; its file cannot be loaded.
    run = deploy(three, tmp_path / "ledger", first, **ONE_AT_A_TIME, next_tasks="no_such_phase.yml")

    assert run.rc != 0
    lines = run.stdout.splitlines()
    fatal = next(number for number, line in enumerate(lines) if line.startswith("fatal: [localhost]"))
    banner = next(line for line in reversed(lines[:fatal]) if line.startswith("TASK ["))
    assert banner.startswith("TASK [fleetops.codedeploy.deploy : Run the deployment]"), run.stdout
