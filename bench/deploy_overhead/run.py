# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: deployment overhead of fleetops.codedeploy.deploy against a plain playbook, on a real local fleet.

10 fleet hosts; a revision with a 10 MB file and 5 hooks that each sleep 0.2 s. Runs, alternately in one run:
the deploy playbook (AllAtOnce and OneAtATime) and the hand-written plain.yml doing the same copy, unpack and
5 script tasks (all hosts at once, and serial 1); and the bundle push against a raw parallel scp of the same file
to the same hosts. The push is measured inside the AllAtOnce deployments, from the first host's transfer start to
the last one's end, as the record reports them. Prints a Markdown section for bench/RESULTS.md.

Usage (as root, from the checkout, after `make deps`): .venv/bin/python bench/deploy_overhead/run.py [rounds]
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "fleet"))
sys.path.insert(0, str(REPO / "tests"))

from fleet import Fleet, state_root  # noqa: E402
from support.revisions import archive_tree, write_tree  # noqa: E402

HOSTS = 10
OCTET2 = 95
HOOK = "#!/bin/sh\nsleep 0.2\n"
APPSPEC = """\
version: 0.0
os: linux
files:
  - source: data
    destination: /srv/bench-app
hooks:
  ApplicationStop: [{location: scripts/stop.sh}]
  BeforeInstall: [{location: scripts/before_install.sh}]
  AfterInstall: [{location: scripts/after_install.sh}]
  ApplicationStart: [{location: scripts/start.sh}]
  ValidateService: [{location: scripts/validate.sh}]
"""


def make_revision(scratch: Path) -> Path:
    files = {"appspec.yml": APPSPEC, "data/blob.bin": os.urandom(10 * 1024 * 1024)}
    for name in ("stop", "before_install", "after_install", "start", "validate"):
        files[f"scripts/{name}.sh"] = HOOK
    return write_tree(scratch / "revision", files)


def env(fleet: Fleet) -> dict[str, str]:
    return dict(os.environ, ANSIBLE_CONFIG=str(fleet.ansible_cfg),
                ANSIBLE_COLLECTIONS_PATH=str(REPO / ".venv" / "collections"),
                PATH=f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")


def timed(argv: list[str], fleet: Fleet) -> float:
    start = time.monotonic()
    run = subprocess.run(argv, env=env(fleet), capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    return elapsed


def clear_hosts(fleet: Fleet) -> None:
    """Every run starts from hosts without the bundle, so each one really transfers 10 x 10 MB."""
    fleet.reset()


def deploy(fleet: Fleet, revision: Path, ledger: Path, config: str) -> float:
    extra = {"codedeploy_application_name": "bench", "codedeploy_deployment_group_name": "bench",
             "codedeploy_target_group": "fleet", "codedeploy_deployment_config_name": config,
             "codedeploy_revision": {"source": "local", "path": str(revision)}, "codedeploy_ledger_dir": str(ledger)}
    return timed([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(fleet.inventory),
                  "fleetops.codedeploy.deploy", "-e", json.dumps(extra)], fleet)


def plain(fleet: Fleet, bundle: Path, serial: int) -> float:
    return timed([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(fleet.inventory),
                  str(Path(__file__).with_name("plain.yml")), "-e",
                  json.dumps({"bundle": str(bundle), "plain_serial": serial})], fleet)


def push_wall_time(ledger: Path) -> float:
    """The bundle transfer of the newest deployment, all hosts at once: first push started to last push ended,
    as each instance's record reports it (``bundle_push``)."""
    newest = max((ledger / "deployments").glob("*.json"), key=lambda path: path.stat().st_mtime)
    pushes = [entry.get("bundle_push") for entry in json.loads(newest.read_text())["instances"]]
    if len(pushes) != HOSTS or None in pushes:
        raise SystemExit(f"{newest}: not every instance received the bundle")
    start = min(iso_time(push["start_time"]) for push in pushes)
    return (max(iso_time(push["end_time"]) for push in pushes) - start).total_seconds()


def iso_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def raw_scp(fleet: Fleet, bundle: Path) -> float:
    hosts = fleet.load().hosts
    start = time.monotonic()
    procs = [subprocess.Popen(["scp", "-q", "-i", str(fleet.client_key), "-o", "StrictHostKeyChecking=no",
                               "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", str(bundle),
                               f"root@{host.address}:/srv/"]) for host in hosts]
    if any(proc.wait() != 0 for proc in procs):
        raise SystemExit("scp failed")
    return time.monotonic() - start


def wave_gaps(ledger: Path) -> list[float]:
    """Time between waves of OneAtATime deployments: the end of a wave (its record) to the first lifecycle
    event of the next wave's instances, on the host. The wave's own start time is stamped by the step that opens it,
    at the end of the one before, so it would leave out the dispatch and the task that follow."""
    gaps = []
    for record_file in (ledger / "deployments").glob("*.json"):
        record = json.loads(record_file.read_text())
        if record["deployment_config_name"] != "CodeDeployDefault.OneAtATime":
            continue
        instances = {entry["instance_id"]: entry for entry in record["instances"]}
        for finished, following in zip(record["waves"], record["waves"][1:]):
            starts = [iso_time(event["start_time"]) for name in following["instances"]
                      for event in instances[name]["lifecycle_events"] if event.get("start_time")]
            if starts and finished["end_time"]:
                gaps.append((min(starts) - iso_time(finished["end_time"])).total_seconds())
    return gaps


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    fleet = Fleet(state_root() / f"bench-{OCTET2}", octet2=OCTET2)
    fleet.up(HOSTS, moto=False)
    scratch = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    try:
        revision = make_revision(scratch)
        bundle = archive_tree(revision, scratch / "bundle.tar", "tar")
        ledger = scratch / "ledger"
        # Warm the SSH masters and the controller's revision cache, as an operator's second run would be.
        deploy(fleet, revision, ledger, "CodeDeployDefault.AllAtOnce")
        times: dict[str, list[float]] = {k: [] for k in ("ours_all", "plain_all", "ours_one", "plain_one",
                                                         "push", "scp")}
        for _round in range(rounds):
            for key, action in (("ours_all", lambda: deploy(fleet, revision, ledger, "CodeDeployDefault.AllAtOnce")),
                                ("plain_all", lambda: plain(fleet, bundle, 0)),
                                ("ours_one", lambda: deploy(fleet, revision, ledger, "CodeDeployDefault.OneAtATime")),
                                ("plain_one", lambda: plain(fleet, bundle, 1)),
                                ("scp", lambda: raw_scp(fleet, bundle))):
                clear_hosts(fleet)
                times[key].append(action())
                if key == "ours_all":
                    times["push"].append(push_wall_time(ledger))
        report(times, wave_gaps(ledger), rounds)
    finally:
        fleet.down()
        shutil.rmtree(scratch, ignore_errors=True)


def report(times: dict[str, list[float]], gaps: list[float], rounds: int) -> None:
    med = {key: statistics.median(values) for key, values in times.items()}
    load = os.getloadavg()
    print(f"### deploy_overhead — {datetime.date.today()}, {HOSTS} fleet hosts, {rounds} alternating rounds")
    print(f"Machine: {os.cpu_count()} cores; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.")
    print("Command: `.venv/bin/python bench/deploy_overhead/run.py " + str(rounds) + "` (median seconds)\n")
    print("| what | fleetops.codedeploy | plain playbook | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| AllAtOnce | {med['ours_all']:.1f} | {med['plain_all']:.1f} | {med['ours_all'] / med['plain_all']:.2f} | ≤ 0.7 |")
    print(f"| OneAtATime | {med['ours_one']:.1f} | {med['plain_one']:.1f} | {med['ours_one'] / med['plain_one']:.2f} | ≤ 0.7 |")
    print(f"| bundle push vs raw parallel scp | {med['push']:.1f} | {med['scp']:.1f} (scp) | "
          f"{med['push'] / med['scp']:.2f} | ≤ 1.3 |")
    if gaps:
        print(f"\nTime between OneAtATime waves (a wave's record to the next wave's first event on its host): "
              f"median {statistics.median(gaps):.2f} s, max {max(gaps):.2f} s over {len(gaps)} gaps "
              "(target ≤ 1 s).")
    print("\nRaw runs: " + json.dumps({key: [round(v, 2) for v in values] for key, values in times.items()}))


if __name__ == "__main__":
    main()
