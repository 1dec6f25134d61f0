#!/usr/bin/env python
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory build time: fleetops.codedeploy.deployment_groups against amazon.aws.aws_ec2, on a moto server.

2,000 EC2 instances in two regions (created in reservations of 500: moto pages by reservation and re-filters the
whole set for every page), 20 deployment groups (5 applications x 4 environments, each a tag set
[[App=<app>], [Env=<env>]]), some instances outside every group and some stopped. aws_ec2 gets the equivalent
configuration: the same server-side tag filters and one ``groups`` condition per application and per deployment
group. Both plugins run under the same Python and ansible-core (the comparison virtualenv, created here from
requirements.txt), alternating, and must produce the same deployment group membership before any timing counts.

Usage: bench/inventory/run_benchmark.py [--rounds 5] [--json results.json]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
COMPARISON_VENV = HERE / ".venv-aws-ec2"
WORK = HERE / "work"
REGIONS = ("us-east-1", "eu-west-1")
INSTANCES_PER_REGION = 1000
RESERVATION_SIZE = 500
APPS = [f"app{n}" for n in range(5)]
ENVS = [f"env{n}" for n in range(4)]
# Per region: instances outside every deployment group, and stopped instances (still targets).
OUTSIDE_PER_REGION = 100
STOPPED_PER_REGION = 50
TARGET_STATES = ["pending", "running", "stopping", "stopped"]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGIONS[0]}


def comparison_python() -> Path:
    """The comparison virtualenv's Python, (re)built when requirements.txt changed."""
    requirements = HERE / "requirements.txt"
    stamp = COMPARISON_VENV / ".requirements-sha256"
    wanted = hashlib.sha256(requirements.read_bytes()).hexdigest()
    python = COMPARISON_VENV / "bin" / "python"
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        print(f"Creating {COMPARISON_VENV} from {requirements.name} (a few minutes)", flush=True)
        shutil.rmtree(COMPARISON_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(COMPARISON_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
        stamp.write_text(wanted)
    return python


def start_moto() -> tuple[subprocess.Popen, str]:
    moto_server = shutil.which("moto_server", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if not moto_server:
        sys.exit("moto_server not found: run this script with the project's virtualenv (.venv/bin/python)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(WORK / "moto.log", "wb")
    proc = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).read()
            return proc, endpoint
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    sys.exit(f"moto_server did not answer on {endpoint}; see {WORK / 'moto.log'}")


def populate(endpoint: str) -> dict[str, set[str]]:
    """Create the instances; return the expected members (instance IDs) of each deployment group."""
    import boto3

    expected: dict[str, set[str]] = {f"codedeploy_{app}_{env}": set() for app in APPS for env in ENVS}
    for region in REGIONS:
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint, aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        ids: list[str] = []
        for reservation_number in range(INSTANCES_PER_REGION // RESERVATION_SIZE):
            reservation = ec2.run_instances(ImageId="ami-12c6146b", MinCount=RESERVATION_SIZE,
                                            MaxCount=RESERVATION_SIZE, InstanceType="t3.micro")
            ids += [instance["InstanceId"] for instance in reservation["Instances"]]
        outside, grouped = ids[:OUTSIDE_PER_REGION], ids[OUTSIDE_PER_REGION:]
        ec2.create_tags(Resources=outside, Tags=[{"Key": "App", "Value": "legacy"}, {"Key": "Env", "Value": "env0"}])
        combos = [(app, env) for app in APPS for env in ENVS]
        for index, (app, env) in enumerate(combos):
            members = grouped[index::len(combos)]
            ec2.create_tags(Resources=members, Tags=[{"Key": "App", "Value": app}, {"Key": "Env", "Value": env},
                                                     {"Key": "Role", "Value": "web"}])
            expected[f"codedeploy_{app}_{env}"].update(members)
        ec2.stop_instances(InstanceIds=grouped[:STOPPED_PER_REGION])
    return expected


def write_configs(endpoint: str) -> dict[str, Path]:
    ours = {
        "plugin": "fleetops.codedeploy.deployment_groups",
        "regions": list(REGIONS),
        "endpoint_url": endpoint,
        "applications": {app: {"deployment_groups": {env: {"ec2_tag_set": [
            [{"key": "App", "value": app, "type": "KEY_AND_VALUE"}],
            [{"key": "Env", "value": env, "type": "KEY_AND_VALUE"}]]} for env in ENVS}} for app in APPS},
    }
    groups = {f"codedeploy_{app}": f"ec2_tags.App == '{app}'" for app in APPS}
    groups.update({f"codedeploy_{app}_{env}": f"ec2_tags.App == '{app}' and ec2_tags.Env == '{env}'"
                   for app in APPS for env in ENVS})
    theirs = {
        "plugin": "amazon.aws.aws_ec2",
        "regions": list(REGIONS),
        "endpoint_url": endpoint,
        "filters": {"tag:App": APPS, "tag:Env": ENVS, "instance-state-name": TARGET_STATES},
        "hostnames": ["instance-id"],
        "groups": groups,
    }
    paths = {"deployment_groups": WORK / "bench.codedeploy.yml", "aws_ec2": WORK / "bench.aws_ec2.yml"}
    # JSON is YAML: no PyYAML needed to write the configurations.
    paths["deployment_groups"].write_text(json.dumps(ours, indent=1))
    paths["aws_ec2"].write_text(json.dumps(theirs, indent=1))
    return paths


def inventory_env() -> dict[str, str]:
    """ansible-inventory of the comparison virtualenv; this collection found through a link in work/."""
    link = WORK / "collections" / "ansible_collections" / "fleetops" / "codedeploy"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO_ROOT)
    return {**os.environ, **CREDENTIALS, "ANSIBLE_COLLECTIONS_PATH": str(WORK / "collections"),
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1", "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_NOCOLOR": "1"}


def run_inventory(python: Path, config: Path, mode: str, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (the process and its children) of ``ansible-inventory -i config --<mode>``."""
    command = [str(python.parent / "ansible-inventory"), "-i", str(config), f"--{mode}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def membership(listing: dict) -> dict[str, set[str]]:
    return {group: set(listing.get(group, {}).get("hosts", []))
            for group in (f"codedeploy_{app}_{env}" for app in APPS for env in ENVS)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each plugin and mode (default 5)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    python = comparison_python()
    load_before = os.getloadavg()
    moto, endpoint = start_moto()
    try:
        started = time.perf_counter()
        expected = populate(endpoint)
        print(f"moto {endpoint}: {len(REGIONS) * INSTANCES_PER_REGION} instances in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        configs = write_configs(endpoint)
        env = inventory_env()
        for plugin, config in configs.items():
            output = run_inventory(python, config, "list", env)[2]
            found = membership(json.loads(output))
            if found != expected:
                wrong = sorted(group for group in expected if found[group] != expected[group])
                sys.exit(f"{plugin} does not give the expected membership for {wrong[:3]}: not comparable")
        print("Both plugins give the same 20 deployment groups "
              f"({sum(len(members) for members in expected.values())} memberships)", flush=True)
        figures: dict[str, dict[str, dict[str, list[float]]]] = {
            mode: {plugin: {"wall": [], "cpu": []} for plugin in configs} for mode in ("graph", "list")}
        for round_number in range(args.rounds):
            order = list(configs) if round_number % 2 == 0 else list(reversed(configs))
            for mode in ("graph", "list"):
                for plugin in order:
                    wall, cpu = run_inventory(python, configs[plugin], mode, env)[:2]
                    figures[mode][plugin]["wall"].append(wall)
                    figures[mode][plugin]["cpu"].append(cpu)
                    print(f"round {round_number + 1} --{mode} {plugin}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    finally:
        moto.terminate()
        moto.wait(timeout=30)
    load_after = os.getloadavg()
    report(figures, python, load_before, load_after, args)
    return 0


def report(figures, python: Path, load_before, load_after, args) -> None:
    version = subprocess.run([str(python.parent / "ansible-inventory"), "--version"], capture_output=True,
                             text=True, check=False).stdout.splitlines()[0]
    amazon = subprocess.run([str(python.parent / "ansible-galaxy"), "collection", "list", "amazon.aws"],
                            capture_output=True, text=True, check=False).stdout.split()
    amazon_version = amazon[amazon.index("amazon.aws") + 1] if "amazon.aws" in amazon else "?"
    print()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, Python "
          f"{platform.python_version()}, {version}, amazon.aws {amazon_version}")
    print(f"Load average (1 min) before: {load_before[0]:.2f}, after: {load_after[0]:.2f}")
    print()
    print("| command | plugin | median wall (s) | min-max wall (s) | median CPU (s) |")
    print("|---|---|---|---|---|")
    for mode, plugins in figures.items():
        for plugin, values in plugins.items():
            print(f"| ansible-inventory --{mode} | {plugin} | {statistics.median(values['wall']):.2f} | "
                  f"{min(values['wall']):.2f}-{max(values['wall']):.2f} | {statistics.median(values['cpu']):.2f} |")
    print()
    for mode, plugins in figures.items():
        ratio = statistics.median(plugins["deployment_groups"]["wall"]) / statistics.median(plugins["aws_ec2"]["wall"])
        cpu_ratio = statistics.median(plugins["deployment_groups"]["cpu"]) / statistics.median(plugins["aws_ec2"]["cpu"])
        print(f"--{mode}: deployment_groups / aws_ec2 = {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "load": [load_before, load_after],
                                         "ansible": version, "amazon.aws": amazon_version}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
