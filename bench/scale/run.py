# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: how fleetops.codedeploy.deploy scales with the number of hosts, against a plain playbook, push and pull.

The same deployment as bench/deploy_overhead (a revision with a 10 MB file and 5 hooks that each sleep 0.2 s, from
moto S3, pinned by its ETag so that the controller's cache holds it after the first run) on the first N hosts of one
fleet, for each N of ``--hosts`` (default 10 20 40), with forks = N. In each round, alternately:

- the deploy playbook, AllAtOnce and HalfAtATime, with ``codedeploy_bundle_transport`` push and pull;
- bench/deploy_overhead/plain.yml doing the same work (copy + unarchive + 5 script tasks), all hosts at once and
  serial 50 %.

Every run starts from hosts holding nothing (the fleet's reset), so each one really transfers the bundle N times.
For each run: the wall time; the controller's CPU seconds (user + system of ansible-playbook and everything it
waited for: its workers and their commands; plus the CPU the SSH ControlPersist masters used during the run, which
carry every byte to the hosts but are not ansible-playbook's children); and the bytes the controller pushed (the
records' ``bundle_push``; the plain playbook's copy is the bundle's size per host). moto's CPU (it serves the hosts'
downloads with pull) is not the controller's and is not counted. Prints a Markdown section for bench/RESULTS.md.

Also measured: how long the test fleet takes to start the largest N hosts.

Usage (as root, from the checkout, after `make deps`):
    .venv/bin/python bench/scale/run.py [--hosts 10 20 40] [--rounds 3] [--octet 96]
Quick check that it runs: .venv/bin/python bench/scale/run.py --hosts 4 --rounds 1
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "fleet"))
sys.path.insert(0, str(REPO / "tests"))

from fleet import Fleet, render_inventory, state_root  # noqa: E402
from support.revisions import archive_tree, write_tree  # noqa: E402

PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
PLAIN = REPO / "bench" / "deploy_overhead" / "plain.yml"
BUCKET, KEY = "bench", "bench/bundle.tar"
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
# (label, deployment configuration or the plain playbook's serial, transport or None for the plain playbook)
RUNS = (
    ("AllAtOnce push", "CodeDeployDefault.AllAtOnce", "push"),
    ("AllAtOnce pull", "CodeDeployDefault.AllAtOnce", "pull"),
    ("plain all at once", 0, None),
    ("HalfAtATime push", "CodeDeployDefault.HalfAtATime", "push"),
    ("HalfAtATime pull", "CodeDeployDefault.HalfAtATime", "pull"),
    ("plain serial 50%", "50%", None),
)
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class Measure:
    wall: float
    cpu: float
    pushed_bytes: int


def make_revision(scratch: Path) -> Path:
    files = {"appspec.yml": APPSPEC, "data/blob.bin": os.urandom(10 * 1024 * 1024)}
    for name in ("stop", "before_install", "after_install", "start", "validate"):
        files[f"scripts/{name}.sh"] = HOOK
    return write_tree(scratch / "revision", files)


def upload(endpoint: str, bundle: Path) -> str:
    """Put the bundle into moto S3 (boto3 of the virtualenv, as the controller has it); return its ETag."""
    import boto3  # the controller's dependency, imported here only
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    return client.put_object(Bucket=BUCKET, Key=KEY, Body=bundle.read_bytes())["ETag"]


def ansible_env(fleet: Fleet, forks: int) -> dict[str, str]:
    return dict(os.environ, **AWS_ENV, ANSIBLE_CONFIG=str(fleet.ansible_cfg), ANSIBLE_FORKS=str(forks),
                ANSIBLE_COLLECTIONS_PATH=str(REPO / ".venv" / "collections"),
                PATH=f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")


def ssh_master_cpu() -> dict[int, float]:
    """CPU seconds so far of each SSH ControlPersist master (``ssh: <path> [mux]``) on the machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            if not cmdline.startswith(b"ssh: ") or b"[mux]" not in cmdline:
                continue
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def timed(argv: list[str], fleet: Fleet, forks: int) -> tuple[float, float]:
    """(wall seconds, controller CPU seconds) of one ansible-playbook run."""
    masters_before = ssh_master_cpu()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    run = subprocess.run(argv, env=ansible_env(fleet, forks), capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    masters = sum(cpu - masters_before.get(pid, 0.0) for pid, cpu in ssh_master_cpu().items())
    cpu = (children.ru_utime - children_before.ru_utime) + (children.ru_stime - children_before.ru_stime)
    return wall, cpu + masters


def deploy(fleet: Fleet, inventory: Path, forks: int, ledger: Path, revision: dict, config: str, transport: str,
           endpoint: str) -> Measure:
    extra = {"codedeploy_application_name": "bench", "codedeploy_deployment_group_name": "bench",
             "codedeploy_target_group": "fleet", "codedeploy_deployment_config_name": config,
             "codedeploy_revision": revision, "codedeploy_ledger_dir": str(ledger),
             "codedeploy_aws": {"endpoint_url": endpoint, "region": "us-east-1"},
             "codedeploy_bundle_transport": transport}
    wall, cpu = timed([str(PLAYBOOK), "-i", str(inventory), "fleetops.codedeploy.deploy", "-e", json.dumps(extra)],
                      fleet, forks)
    newest = max((ledger / "deployments").glob("*.json"), key=lambda path: path.stat().st_mtime)
    record = json.loads(newest.read_text())
    if record["status"] != "Succeeded":
        raise SystemExit(f"{newest}: the deployment did not succeed")
    moved = [entry.get("bundle_pull" if transport == "pull" else "bundle_push") for entry in record["instances"]]
    if None in moved:
        raise SystemExit(f"{newest}: not every instance got the bundle by {transport}")
    pushed = sum((entry.get("bundle_push") or {}).get("bytes", 0) for entry in record["instances"])
    return Measure(wall, cpu, pushed)


def plain(fleet: Fleet, inventory: Path, forks: int, bundle: Path, serial) -> Measure:
    wall, cpu = timed([str(PLAYBOOK), "-i", str(inventory), str(PLAIN), "-e",
                       json.dumps({"bundle": str(bundle), "plain_serial": serial})], fleet, forks)
    return Measure(wall, cpu, bundle.stat().st_size * forks)


def fleet_start(fleet: Fleet, count: int) -> float:
    start = time.monotonic()
    fleet.up(count)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--octet", type=int, default=96, help="the fleet's address range, 127.<octet>.0.x")
    args = parser.parse_args()
    fleet = Fleet(state_root() / f"bench-scale-{args.octet}", octet2=args.octet)
    load_start = os.getloadavg()
    started_in = fleet_start(fleet, max(args.hosts))
    scratch = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        state = fleet.load()
        bundle = archive_tree(make_revision(scratch), scratch / "bundle.tar", "tar")
        etag = upload(state.endpoint, bundle)
        revision = {"source": "s3", "bucket": BUCKET, "key": KEY, "bundle_type": "tar", "etag": etag}
        results: dict[int, dict[str, list[Measure]]] = {}
        for count in args.hosts:
            names = [host.name for host in state.hosts[:count]]
            inventory = scratch / f"inventory-{count}.yml"
            inventory.write_text(render_inventory(fleet, state.hosts[:count]))
            ledger = scratch / f"ledger-{count}"
            # Warm the SSH masters and the controller's revision cache, as an operator's second run would be.
            deploy(fleet, inventory, count, ledger, revision, "CodeDeployDefault.AllAtOnce", "push", state.endpoint)
            results[count] = {label: [] for label, _config, _transport in RUNS}
            for _round in range(args.rounds):
                for label, config, transport in RUNS:
                    fleet.reset(names)
                    results[count][label].append(
                        plain(fleet, inventory, count, bundle, config) if transport is None
                        else deploy(fleet, inventory, count, ledger, revision, config, transport, state.endpoint))
        report(results, args, started_in, max(args.hosts), load_start, os.getloadavg(),
               hashlib.sha256(bundle.read_bytes()).hexdigest()[:12])
    finally:
        fleet.down()
        shutil.rmtree(scratch, ignore_errors=True)


def report(results: dict[int, dict[str, list[Measure]]], args, started_in: float, largest: int, load_start,
           load_end, bundle_id: str) -> None:
    print(f"### scale — {datetime.date.today()}, {' / '.join(map(str, args.hosts))} fleet hosts, {args.rounds} "
          "alternating rounds")
    print(f"Machine: {os.cpu_count()} cores; load average at the start {load_start[0]:.1f} / {load_start[1]:.1f} / "
          f"{load_start[2]:.1f}, at the end {load_end[0]:.1f} / {load_end[1]:.1f} / {load_end[2]:.1f}.")
    print(f"Command: `.venv/bin/python bench/scale/run.py --hosts {' '.join(map(str, args.hosts))} --rounds "
          f"{args.rounds}` (medians; bundle {bundle_id}, 10 MB). The fleet of {largest} hosts started in "
          f"{started_in:.1f} s.\n")
    print("| hosts | run | wall (s) | controller CPU (s) | CPU per host (s) | bytes pushed | wall / plain |")
    print("|---|---|---|---|---|---|---|")
    for count, runs in results.items():
        medians = {label: (statistics.median(m.wall for m in measures), statistics.median(m.cpu for m in measures),
                           statistics.median(m.pushed_bytes for m in measures)) for label, measures in runs.items()}
        for label, (wall, cpu, pushed) in medians.items():
            baseline = medians["plain all at once" if "AllAtOnce" in label else "plain serial 50%"][0]
            ratio = f"{wall / baseline:.2f}" if "plain" not in label else ""
            print(f"| {count} | {label} | {wall:.1f} | {cpu:.1f} | {cpu / count:.2f} | {pushed:,} | {ratio} |")
    raw = {count: {label: [[round(m.wall, 2), round(m.cpu, 2)] for m in measures] for label, measures in runs.items()}
           for count, runs in results.items()}
    print("\nRaw runs ([wall, CPU] per round): " + json.dumps(raw))


if __name__ == "__main__":
    main()
