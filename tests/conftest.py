# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Session fixtures: a pool of real SSH fleet hosts, a moto server, and helpers to run Ansible against them.

A test asks for ``fleet(3)`` to get the first three hosts of the pool, emptied of whatever earlier tests left
in their private directories, with an inventory of just those hosts; and for ``aws`` to get a freshly reset
moto endpoint with credentials in the environment.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "fleet"))

from fleet import Fleet, render_inventory, state_root  # noqa: E402  (the fleet script lives beside the tests, not in a package)

POOL_SIZE = int(os.environ.get("FLEET_POOL_SIZE", "10"))
# A test fleet of its own, so that `make test` can run beside a demo or molecule fleet; with pytest-xdist, one pool
# per worker (gw0 on the base octet, gw1 on the next, ...).
POOL_OCTET2 = int(os.environ.get("FLEET_TEST_OCTET2", "77")) + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
COLLECTIONS_PATH = REPO_ROOT / ".venv" / "collections"


def ansible_env(fleet: Fleet, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(fleet.ansible_cfg),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    })
    env.update(extra or {})
    return env


@dataclass
class Run:
    """A finished command: what a user sees on the terminal."""

    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class FleetView:
    """The first N hosts of the pool, as one inventory group ``fleet``."""

    fleet: Fleet
    hosts: list[str]
    inventory: Path
    env_extra: dict[str, str]

    def path(self, host: str, path: str) -> Path:
        """Where the machine sees ``path`` of ``host`` (for the private directories)."""
        return self.fleet.host_path(host, path)

    def run(self, argv: list[str], timeout: float = 600, env: dict[str, str] | None = None) -> Run:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout, cwd=REPO_ROOT,
                              env=ansible_env(self.fleet, {**self.env_extra, **(env or {})}))
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def ansible(self, pattern: str, module: str, args: str | dict = "", *options: str) -> Run:
        module_args = json.dumps(args) if isinstance(args, dict) else args
        return self.run([_bin("ansible"), pattern, "-i", str(self.inventory), "-m", module, "-a", module_args,
                         *options])

    def results(self, pattern: str, module: str, args: dict, *options: str) -> dict[str, dict]:
        """Run one module on ``pattern`` and return each host's result as the module returned it."""
        with tempfile.TemporaryDirectory() as tree:
            # The tree callback writes each host's result as JSON, untouched by any display formatting.
            self.run([_bin("ansible"), pattern, "-i", str(self.inventory), "-m", module, "-a", json.dumps(args),
                      *options], env={"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_CALLBACKS_ENABLED": "tree",
                                      "ANSIBLE_CALLBACK_TREE_DIR": tree})
            return {path.name: json.loads(path.read_text()) for path in Path(tree).iterdir()}

    def playbook(self, playbook: str | Path, *options: str, extra_vars: dict | None = None,
                 env: dict[str, str] | None = None, wrapper: tuple[str, ...] = ()) -> Run:
        """``ansible-playbook`` on the view's inventory; ``wrapper``: a command that runs it (a namespace of its own)."""
        argv = [*wrapper, _bin("ansible-playbook"), "-i", str(self.inventory), str(playbook), *options]
        if extra_vars is not None:
            argv += ["-e", json.dumps(extra_vars)]
        return self.run(argv, env=env)

    def ssh(self, host: str, command: str) -> Run:
        """A shell command on ``host`` over real SSH, as an operator would type it."""
        address = next(h.address for h in self.fleet.load().hosts if h.name == host)
        return self.run(["ssh", "-i", str(self.fleet.client_key), "-o", "UserKnownHostsFile=/dev/null",
                         "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", f"root@{address}", command])


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.fixture(scope="session")
def fleet_pool(tmp_path_factory):
    fleet = Fleet(state_root() / f"test-pool-{POOL_OCTET2}", octet2=POOL_OCTET2)
    fleet.up(POOL_SIZE)
    try:
        yield fleet
    finally:
        fleet.down()


@pytest.fixture
def aws(fleet_pool) -> dict[str, str]:
    """A reset moto server: the environment boto3 and the collection's modules need to reach it."""
    endpoint = fleet_pool.load().endpoint
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).read()
    return {
        "endpoint_url": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture
def s3(aws):
    """A moto S3 client with bucket ``releases``, the ``codedeploy_aws`` input and the playbook's environment."""
    client = boto3.client("s3", endpoint_url=aws["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="releases")
    env = {name: value for name, value in aws.items() if name.startswith("AWS_")}
    return client, {"endpoint_url": aws["endpoint_url"], "region": "us-east-1"}, env


@pytest.fixture
def fleet(fleet_pool, tmp_path):
    """``fleet(n)``: the first n hosts of the pool, emptied, with their own inventory."""

    def make(count: int) -> FleetView:
        if count > POOL_SIZE:
            pytest.fail(f"the test pool has {POOL_SIZE} hosts; set FLEET_POOL_SIZE to at least {count}")
        hosts = fleet_pool.load().hosts[:count]
        names = [h.name for h in hosts]
        fleet_pool.reset(names)
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(render_inventory(fleet_pool, hosts))
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        return FleetView(fleet_pool, names, inventory, env)

    return make
