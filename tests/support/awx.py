# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a playbook as an AWX job runs it.

Each job is an ``ansible-runner run`` in a private data dir of its own: ``env/envvars`` holds the environment the
job's credentials inject (AWS keys), ``env/extravars`` the launch's extra vars (a survey's answers are strings),
``inventory/`` the job's inventory and ``project/`` a copy of the example AWX project (``examples/awx``). The
collection comes from its built tarball, installed the way a project sync installs ``collections/requirements.yml``
(into ``requirements_collections/``, the only collections path the job sees). Each job runs in a "container" of its
own: a fresh HOME and TMPDIR, and ``HOSTNAME`` set to the container's name, as a new container gets.

``start()`` leaves the job running (for concurrent jobs, or to SIGKILL it as AWX cancels a container); ``run()``
waits. A finished job gives its rc, stdout, the job events runner wrote and the ``playbook_on_stats`` event data.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PROJECT = REPO_ROOT / "examples" / "awx"
VENV_BIN = Path(sys.executable).parent


@functools.lru_cache(maxsize=1)
def collection_tarball() -> Path:
    """The collection as ``ansible-galaxy collection build`` packs this checkout (galaxy.yml's build_ignore
    applies), built once per test session."""
    output = Path(tempfile.mkdtemp(prefix="fleetops-collection-"))
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", str(REPO_ROOT), "--output-path",
                    str(output), "--force"], check=True, capture_output=True, text=True,
                   env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    return next(output.glob("fleetops-codedeploy-*.tar.gz"))


@contextlib.contextmanager
def jobs_root() -> Iterator[Path]:
    """A short directory for jobs' private data dirs: a job's TMPDIR holds Unix sockets (ansible-core's RPC host),
    whose paths must stay under 108 bytes."""
    root = Path(tempfile.mkdtemp(prefix="awx-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class JobResult:
    """What AWX shows of a finished job: its exit code, its stdout, its events and the stats event."""

    rc: int
    stdout: str
    events: list[dict]
    private_data_dir: Path

    @property
    def stats(self) -> dict:
        """The ``playbook_on_stats`` event data (ok/failures/... per host; ``artifact_data`` from set_stats)."""
        found = [event["event_data"] for event in self.events if event.get("event") == "playbook_on_stats"]
        assert found, f"the job has no playbook_on_stats event (rc {self.rc}):\n{self.stdout[-3000:]}"
        return found[-1]

    @property
    def artifact_data(self) -> dict:
        """What the job's set_stats gave a workflow's next node."""
        return self.stats.get("artifact_data") or {}

    def host_status(self, host: str) -> str:
        """The host's line in AWX's host summary: failed, unreachable, changed, ok or skipped."""
        stats = self.stats
        for status in ("failures", "dark", "changed", "ok", "skipped"):
            if stats.get(status, {}).get(host):
                return {"failures": "failed", "dark": "unreachable"}.get(status, status)
        return "absent"

    def hosts_touched(self) -> set[str]:
        """Hosts on which a task ran (ok, failed or unreachable; a skipped task did nothing)."""
        return {event["event_data"]["host"] for event in self.events
                if event.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable")}


@dataclass
class Job:
    """One launched job; ``wait()`` for its result, or ``kill()`` it as a container is killed."""

    process: subprocess.Popen
    private_data_dir: Path
    ident: str
    timeout: float = 900
    _result: Optional[JobResult] = field(default=None, init=False)

    def events_so_far(self) -> list[dict]:
        """The job events written until now (a running job's progress), in order."""
        return read_events(self.private_data_dir / "artifacts" / self.ident / "job_events")

    def wait(self) -> JobResult:
        if self._result is None:
            try:
                stdout = self.process.communicate(timeout=self.timeout)[0]
            except subprocess.TimeoutExpired:
                self.kill()
                raise
            artifacts = self.private_data_dir / "artifacts" / self.ident
            events = read_events(artifacts / "job_events")
            job_stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else stdout
            self._result = JobResult(self.process.returncode, job_stdout, events, self.private_data_dir)
        return self._result

    def kill(self) -> None:
        """SIGKILL every process of the job's container, as a container runtime kills a cancelled job's container:
        ansible-runner, the ansible-playbook it runs in a session of its own, its workers, its SSH masters."""
        # Until none is left, as a cgroup kill does: a parent may fork between the listing and its own kill.
        for _round in range(50):
            alive = container_processes(self.home)
            if not alive:
                break
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        self.process.wait()

    @property
    def home(self) -> Path:
        return self.private_data_dir.parent / "home"


def read_events(directory: Path) -> list[dict]:
    events = []
    for path in directory.glob("*.json") if directory.is_dir() else []:
        if path.name.endswith("-partial.json"):
            continue  # ansible-runner's event in the making, renamed when complete
        try:
            events.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # renamed or still being written between the listing and the read
    return sorted(events, key=lambda event: event.get("counter", 0))


def container_processes(home: Path) -> list[int]:
    """The processes of a job's "container": those whose environment has the job's HOME."""
    marker = f"HOME={home}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes() + b"\0"
        except OSError:
            continue
        if b"\0" + marker in b"\0" + environment:
            found.append(int(entry.name))
    return found


@dataclass
class AWX:
    """Launches jobs of one job template: a playbook of the example project, an inventory and credentials."""

    root: Path
    inventory: Path
    credential_env: dict[str, str]

    def start(self, playbook: str, extra_vars: Optional[dict] = None, *, container: Optional[str] = None,
              limit: Optional[str] = None,
              project_trees: Optional[dict[str, Path]] = None, env: Optional[dict[str, str]] = None,
              timeout: float = 900) -> Job:
        """Launch ``playbook`` (a file of the project) in a fresh container named ``container``.

        ``limit`` is the template's Limit; ``project_trees`` adds directories to the project copy (relative path ->
        the directory to copy), as files committed in the project's repository; ``env`` adds to the job's
        environment (what a custom credential type would inject).
        """
        container = container or f"awx-job-{uuid.uuid4().hex[:8]}"
        job_root = Path(tempfile.mkdtemp(prefix=f"{container}-", dir=self.root))
        private_data_dir = job_root / "runner"
        home = job_root / "home"
        tmp = job_root / "tmp"
        for directory in (home, tmp, private_data_dir / "env", private_data_dir / "inventory"):
            directory.mkdir(parents=True)
        project = private_data_dir / "project"
        shutil.copytree(EXAMPLE_PROJECT, project)
        for relative, tree in (project_trees or {}).items():
            shutil.copytree(tree, project / relative)
        shutil.copy(self.inventory, private_data_dir / "inventory" / "hosts.yml")
        collections = private_data_dir / "requirements_collections"
        self._install_collections(project, collections, home)

        env_file = {
            **self.credential_env,
            "HOME": str(home),
            "HOSTNAME": container,
            "TMPDIR": str(tmp),
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_NOCOLOR": "1",
            **(env or {}),
        }
        (private_data_dir / "env" / "envvars").write_text(yaml.safe_dump(env_file))
        (private_data_dir / "env" / "extravars").write_text(json.dumps(extra_vars or {}))
        (private_data_dir / "env" / "settings").write_text(yaml.safe_dump({"suppress_ansible_output": False}))
        if limit is not None:
            (private_data_dir / "env" / "cmdline").write_text(f"--limit {limit}")

        ident = "1"
        # A container of its own has a hostname of its own (a UTS namespace): what a lease's holder is known by.
        argv = ["unshare", "--uts", "--fork", "sh", "-c", 'hostname "$0" && exec "$@"', container,
                str(VENV_BIN / "ansible-runner"), "run", str(private_data_dir), "-p", playbook, "--ident", ident]
        # The container's own environment: nothing of the test process's Ansible settings leaks into the job.
        process_env = {"PATH": f"{VENV_BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
                       "HOSTNAME": container, "TMPDIR": str(tmp), "LANG": "C.UTF-8"}
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=process_env, start_new_session=True, cwd=job_root)
        return Job(process, private_data_dir, ident, timeout)

    def run(self, playbook: str, extra_vars: Optional[dict] = None, **options) -> JobResult:
        return self.start(playbook, extra_vars, **options).wait()

    @staticmethod
    def _install_collections(project: Path, collections: Path, home: Path) -> None:
        """A project sync: ``ansible-galaxy collection install -r collections/requirements.yml``, the collection
        named by its built tarball (the requirements file of the example names the Galaxy release)."""
        requirements = project / "collections" / "requirements.yml"
        requirements.write_text(yaml.safe_dump({"collections": [
            {"name": str(collection_tarball()), "type": "file"}]}))
        subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "-r", str(requirements), "-p",
                        str(collections), "--offline"], check=True, capture_output=True, text=True,
                       env={"PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin", "HOME": str(home),
                            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_COLLECTIONS_PATH": str(collections)})
