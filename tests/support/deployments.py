# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run deployments on the test fleet the way an operator does, and read what they leave behind.

A test revision installs ``app/`` to /var/www/webapp and has the usual hooks; its ValidateService fails on the
hosts listed in the bundle's own ``fail-hosts`` file, so a test breaks a deployment on chosen hosts with the
revision alone.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

from conftest import REPO_ROOT, ansible_env
from support.haproxy import Haproxy
from support.revisions import write_tree

EXAMPLE_REVISION = Path(__file__).resolve().parents[2] / "examples" / "revisions" / "webapp"
APP_DESTINATION = "/var/www/webapp"
DEPLOYMENT_ROOT = "/opt/codedeploy-agent/deployment-root"
REPORT_CALLBACK = {"ANSIBLE_CALLBACKS_ENABLED": "fleetops.codedeploy.deployment_report"}

APPSPEC = f"""version: 0.0
os: linux
files:
  - source: app
    destination: {APP_DESTINATION}
hooks:
  ApplicationStop:
    - location: scripts/stop.sh
  BeforeInstall:
    - location: scripts/before_install.sh
  ApplicationStart:
    - location: scripts/start.sh
  ValidateService:
    - location: scripts/validate.sh
      timeout: 60
"""

HOLD_FILE = "/srv/hold-validate"


def hold(fleet, on: bool) -> None:
    """Hold every host of ``fleet`` in ValidateService (the test revision's hook waits while HOLD_FILE exists), or
    let them go on (as a clean-up, whatever else failed: it asserts nothing then)."""
    for host in fleet.hosts:
        held = fleet.ssh(host, f"touch {HOLD_FILE}" if on else f"rm -f {HOLD_FILE}")
        assert held.rc == 0 or not on, held


VALIDATE = f"""#!/bin/sh
# Waits while the test holds the host ({HOLD_FILE} exists); fails on the hosts the revision lists in its own
# fail-hosts file (one hostname a line).
set -eu
while [ -e {HOLD_FILE} ]; do sleep 0.2; done
if grep -qx "$(hostname)" "$(dirname "$0")/../fail-hosts"; then
  echo "validation failed on $(hostname)" >&2
  exit 1
fi
echo "healthy on $(hostname)"
"""

ENV_DUMP = """#!/bin/sh
# Leaves the hook's environment where the test can read it.
env > /srv/hook-env
"""


def make_revision(root: Path, version: str, fail_hosts: Iterable[str] = (), appspec: str = APPSPEC) -> Path:
    """A revision directory whose ValidateService fails on ``fail_hosts``; ``app/`` holds its version."""
    return write_tree(root, {
        "appspec.yml": appspec,
        "app/VERSION": f"{version}\n",
        "app/index.html": f"<h1>webapp {version}</h1>\n",
        f"app/assets/v{version}.txt": f"asset of {version}\n",
        "fail-hosts": "".join(f"{host}\n" for host in fail_hosts),
        "scripts/stop.sh": "#!/bin/sh\necho stopping\n",
        "scripts/before_install.sh": ENV_DUMP,
        "scripts/start.sh": "#!/bin/sh\necho starting\n",
        "scripts/validate.sh": VALIDATE,
    })


def example_revision(root: Path, version: str, fail_hosts: Iterable[str] = ()) -> Path:
    """The example revision as it ships (its web app serves its version), with ``version`` in app/VERSION and
    ValidateService failing on ``fail_hosts``."""
    tree = Path(shutil.copytree(EXAMPLE_REVISION, root))
    (tree / "app" / "VERSION").write_text(f"{version}\n")
    if fail_hosts:
        (tree / "fail-hosts").write_text("".join(f"{host}\n" for host in fail_hosts))
    return tree


def addresses(fleet) -> dict[str, str]:
    """Host name -> its loopback address, for the FleetView's hosts."""
    return {host.name: host.address for host in fleet.fleet.load().hosts if host.name in fleet.hosts}


def deployment_vars(ledger: Path, revision: Optional[dict], **inputs) -> dict:
    """Extra vars of a deployment to the FleetView inventory's group ``fleet``; ``inputs`` without the prefix. No
    revision (None): the group's alone, as the stop and rollback playbooks take them."""
    return {
        "codedeploy_application_name": "webapp",
        "codedeploy_deployment_group_name": "prod",
        "codedeploy_target_group": "fleet",
        **({"codedeploy_revision": revision} if revision is not None else {}),
        "codedeploy_ledger_dir": str(ledger),
        **{f"codedeploy_{key}": value for key, value in inputs.items()},
    }


def start_in_background(fleet, ledger: Path, revision: dict, wrapper: tuple[str, ...] = (),
                        output: Optional[Path] = None, **inputs) -> subprocess.Popen:
    """The deploy playbook in its own process group, as an operator's second terminal would run it (under
    ``wrapper``, a command that runs it); its output goes to the file ``output``, else nowhere."""
    argv = [*wrapper, str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(fleet.inventory),
            "fleetops.codedeploy.deploy", "-e", json.dumps(deployment_vars(ledger, revision, **inputs))]
    with open(output or os.devnull, "w") as sink:
        return subprocess.Popen(argv, cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT,
                                env=ansible_env(fleet.fleet, {**fleet.env_extra, **REPORT_CALLBACK}),
                                start_new_session=True)


def local(path: Path) -> dict:
    return {"source": "local", "path": str(path)}


def deploy(fleet, ledger: Path, revision: dict, *options: str, playbook: str = "fleetops.codedeploy.deploy",
           env: Optional[dict] = None, wrapper: tuple[str, ...] = (), **inputs):
    """Run the deploy playbook with the report callback (under ``wrapper``, a command that runs it); return the
    run."""
    return fleet.playbook(playbook, *options, extra_vars=deployment_vars(ledger, revision, **inputs),
                          env={**REPORT_CALLBACK, **(env or {})}, wrapper=wrapper)


def records(ledger: Path) -> list[dict]:
    """Every deployment record of the ledger, oldest first."""
    directory = ledger / "deployments"
    found = [json.loads(path.read_text()) for path in directory.glob("*.json")] if directory.is_dir() else []
    return sorted(found, key=lambda record: record["create_time"])


def statuses(record: dict) -> dict[str, str]:
    return {entry["instance_id"]: entry["status"] for entry in record["instances"]}


def ran(record: dict) -> list[str]:
    """The instances that ran lifecycle events, in the order the waves started them."""
    return [name for wave in record["waves"] for name in wave["instances"]]


def _instant(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def fewest_healthy(record: dict) -> int:
    """The lowest number of healthy instances at any instant, from the recorded event times.

    An instance is unhealthy from the start of its first event that ran to the end of its last; a failed instance
    stays unhealthy to the end."""
    changes = []
    for entry in record["instances"]:
        times = [(event["start_time"], event["end_time"]) for event in entry["lifecycle_events"]
                 if event["start_time"]]
        if not times:
            continue
        changes.append((_instant(min(start for start, _end in times)), 1))
        if entry["status"] != "Failed":
            changes.append((_instant(max(end for _start, end in times)), -1))
    healthy = fewest = len(record["instances"])
    # At one instant, instances that finish are counted before those that start.
    for _when, change in sorted(changes, key=lambda item: (item[0], item[1])):
        healthy -= change
        fewest = min(fewest, healthy)
    return fewest


def tree_digest(fleet, host: str, path: str = APP_DESTINATION) -> dict[str, str]:
    """relative path -> (mode, owner, group, sha256 of a file or a link's target) under ``path`` on ``host``."""
    return path_digest(fleet.path(host, path))


def path_digest(root: Path) -> dict[str, str]:
    """relative path -> (mode, owner, group, sha256 of a file or a link's target) under ``root``."""
    digest = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(directory, name)
            status = os.lstat(full)
            if stat.S_ISLNK(status.st_mode):
                content = os.readlink(full)
            elif stat.S_ISREG(status.st_mode):
                content = hashlib.sha256(Path(full).read_bytes()).hexdigest()
            else:
                content = None
            digest[os.path.relpath(full, root)] = (oct(status.st_mode), status.st_uid, status.st_gid, content)
    return digest


def fleet_digest(fleet, path: str = APP_DESTINATION) -> dict[str, dict[str, str]]:
    return {host: tree_digest(fleet, host, path) for host in fleet.hosts}


def ledger_digest(ledger: Path) -> dict[str, str]:
    """Every file of the ledger and its sha256."""
    return {str(path.relative_to(ledger)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(ledger.rglob("*")) if path.is_file()} if ledger.is_dir() else {}


def wait_for_record(ledger: Path, moment: Callable[[list[dict]], bool], running: Callable[[], bool],
                    timeout: float = 180) -> dict:
    """The ledger's newest record once ``moment`` holds of the records (oldest first); ``running`` says whether what
    writes them still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert running(), "the deployment ended before the moment waited for"
        try:
            found = records(ledger)
        except ValueError:  # a record being replaced at this very moment
            found = []
        if found and moment(found):
            return found[-1]
        time.sleep(0.2)
    raise AssertionError("the deployment never reached the moment waited for")


def wait_for_a_wave(ledger: Path, deployments: int, running: Callable[[], bool], timeout: float = 180) -> dict:
    """The ledger's ``deployments``-th record once its first wave runs (InProgress, instances started in it);
    ``running`` says whether what deploys it still runs."""
    return wait_for_record(ledger, lambda found: len(found) == deployments and found[-1]["status"] == "InProgress"
                           and bool(found[-1]["waves"]) and bool(found[-1]["waves"][0]["instances"]),
                           running, timeout)


def active_locks(ledger: Path) -> list[dict]:
    """The ledger's group locks still held or waiting in Ready (a released lock stays behind, marked released)."""
    locks = [json.loads(path.read_text()) for path in sorted((ledger / "locks").glob("*.json"))]
    return [lock for lock in locks if lock.get("state") != "released"]


# The example revision's web app listens on this port of its host's address.
EXAMPLE_APP_PORT = 8080


def serving_fleet(fleet, count: int, tmp_path: Path, version: str = "1.0.0"):
    """``count`` hosts running the example app at ``version`` (deployed AllAtOnce into the ledger ``tmp_path /
    "ledger"``), and an HAProxy in front of them, every server UP. Returns the fleet view, the ledger and the proxy."""
    group = fleet(count)
    ledger = tmp_path / "ledger"
    first = deploy(group, ledger, local(example_revision(tmp_path / f"v{version}", version)),
                   deployment_config_name="CodeDeployDefault.AllAtOnce")
    assert first.rc == 0, first.output
    proxy = Haproxy(tmp_path / "haproxy", {host: f"{address}:{EXAMPLE_APP_PORT}"
                                           for host, address in addresses(group).items()}, backend="webapp").start()
    wait_until_up(proxy, group.hosts)
    return group, ledger, proxy


def wait_until_up(proxy: Haproxy, hosts: Iterable[str], timeout: float = 20) -> None:
    """Wait until ``proxy`` sees every one of ``hosts`` UP (its health checks passed)."""
    deadline = time.monotonic() + timeout
    while any(not proxy.server_status(host).startswith("UP") for host in hosts):
        assert time.monotonic() < deadline, {host: proxy.server_status(host) for host in hosts}
        time.sleep(0.2)


def load_balancer(proxy: Haproxy) -> dict:
    """The deployment input ``load_balancer_info`` for ``proxy``'s backend."""
    return {"haproxy": {"socket": str(proxy.socket), "backend": proxy.backend}}
