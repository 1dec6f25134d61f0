# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet of real SSH hosts on one machine, plus a moto server, for tests, molecule and the demo.

Each host is one ``sshd`` listening on its own loopback address ``127.<octet2>.0.(10+i)`` port 22, started in
its own mount and UTS namespace. Inside that namespace the paths a revision writes (``/opt/codedeploy-agent``,
``/var/www``, ``/srv``, ``/etc/fleet-app``, ``/home/deploy``, ``/tmp``) are bind mounts of private directories
under the fleet's state directory, ``/etc/passwd`` and friends gain a ``deploy`` user, and the system
Python's PyYAML is hidden, as on a real target.

Usage: ``fleet up N`` | ``fleet down`` | ``fleet status`` | ``fleet reset [HOST...]`` | ``fleet endpoint``.
Environment: ``FLEET_STATE`` (state directory, default under /var/tmp/fleetops-fleet), ``FLEET_OCTET2`` (second
octet of the addresses, default 0).
Needs root (namespaces and mounts), ``unshare`` and ``/usr/sbin/sshd``.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SSHD = "/usr/sbin/sshd"
# Paths each host sees privately, and the directory name that backs each one in the state directory.
PRIVATE_DIRS = {
    "/opt/codedeploy-agent": "opt-codedeploy-agent",
    "/var/www": "var-www",
    "/srv": "srv",
    "/etc/fleet-app": "etc-fleet-app",
    "/home/deploy": "home-deploy",
    "/tmp": "tmp",
}
# Bind-mounted over the machine's own files in each host's mount namespace. A tool that replaces one of those files
# on the machine by renaming a new copy over it (useradd, userdel, passwd) detaches these mounts in every running
# host, which then has no deploy user ("can't find user for deploy"): don't run such tools while a fleet is up.
PRIVATE_FILES = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/hostname", "/etc/hosts")
DEPLOY_UID = 1500
# Real targets have no PyYAML; the machine's system Python does (Debian's python3-yaml). Hide it on the hosts.
HIDDEN_PYTHON_PACKAGES = ("/usr/lib/python3/dist-packages/yaml", "/usr/lib/python3/dist-packages/_yaml")
HIDDEN_PACKAGE_INIT = 'raise ImportError("No module named \'yaml\' (not installed on this host)")\n'


class FleetError(Exception):
    """A fleet operation that cannot go on; the message says why and what to do."""


@dataclass
class Host:
    name: str
    address: str
    pid: int = 0
    mnt_ns: str = ""


@dataclass
class FleetState:
    octet2: int
    hosts: list[Host] = field(default_factory=list)
    moto_pid: int = 0
    moto_port: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}" if self.moto_port else ""


# Every checkout's fleets, each checkout's in a directory of its own.
FLEETS_ROOT = Path("/var/tmp/fleetops-fleet")
# The mountpoints the machine lacked, made for the fleets: all fleets share them (a host that starts again after
# another fleet went down needs them still), so the last fleet to go down removes them. The lock orders making them
# and removing them; it stays, as a lock file must, and is empty.
MOUNTPOINTS_RECORD = FLEETS_ROOT / "created-mountpoints"
MOUNTPOINTS_LOCK = Path("/var/tmp/fleetops-fleet.lock")


def state_root() -> Path:
    """Where fleets of this checkout keep their state: outside the checkout, which may lie under a path the hosts
    mount privately (/tmp), and apart from other checkouts' fleets."""
    checkout = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:10]
    return FLEETS_ROOT / checkout


@contextlib.contextmanager
def mountpoints_locked():
    with open(MOUNTPOINTS_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def default_state_dir(octet2: int) -> Path:
    return state_root() / f"fleet-{octet2}"


class Fleet:
    """One fleet, identified by its state directory."""

    def __init__(self, state_dir: Path | str | None = None, octet2: int | None = None) -> None:
        self.octet2 = int(os.environ.get("FLEET_OCTET2", "0")) if octet2 is None else octet2
        env_state = os.environ.get("FLEET_STATE")
        self.state_dir = Path(state_dir or env_state or default_state_dir(self.octet2)).resolve()

    # ----- paths -------------------------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.state_dir / "fleet.json"

    @property
    def inventory(self) -> Path:
        return self.state_dir / "inventory.yml"

    @property
    def ansible_cfg(self) -> Path:
        return self.state_dir / "ansible.cfg"

    @property
    def client_key(self) -> Path:
        return self.state_dir / "id_ed25519"

    def host_dir(self, name: str) -> Path:
        return self.state_dir / "hosts" / name

    def host_path(self, name: str, path: str) -> Path:
        """The machine-side path of ``path`` as host ``name`` sees it (only for the private directories)."""
        for private, backing in sorted(PRIVATE_DIRS.items(), key=lambda item: -len(item[0])):
            if path == private or path.startswith(private + "/"):
                return self.host_dir(name) / "fs" / backing / path[len(private):].lstrip("/")
        raise FleetError(f"{path} is not private to a fleet host; private paths: {', '.join(PRIVATE_DIRS)}")

    # ----- state -------------------------------------------------------------------------------------------
    def load(self) -> FleetState | None:
        if not self.state_file.exists():
            return None
        data = json.loads(self.state_file.read_text())
        data["hosts"] = [Host(**h) for h in data["hosts"]]
        data.pop("created_mountpoints", None)  # a state left by an older fleet: the record holds them now
        return FleetState(**data)

    def save(self, state: FleetState) -> None:
        payload = {
            "octet2": state.octet2,
            "hosts": [vars(h) for h in state.hosts],
            "moto_pid": state.moto_pid,
            "moto_port": state.moto_port,
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(self.state_file)

    # ----- up ----------------------------------------------------------------------------------------------
    def up(self, count: int, moto: bool = True) -> FleetState:
        if os.geteuid() != 0:
            raise FleetError("the fleet needs root: it creates mount namespaces and bind mounts")
        if not os.path.exists(SSHD):
            raise FleetError(f"{SSHD} not found: install openssh-server (make test and make demo do)")
        if count < 1:
            raise FleetError("a fleet needs at least one host")
        for private in PRIVATE_DIRS:
            if str(self.state_dir).startswith(private + "/"):
                # Inside a host, the bind mount would hide the state directory, keys and sshd config included.
                raise FleetError(f"the state directory {self.state_dir} is under {private}, which each host "
                                 "mounts privately; choose another FLEET_STATE")
        if self.load() is not None:
            # A previous fleet left state behind (a crash, or up twice): stop what it recorded and start afresh.
            self.stop_processes(self.load())
        self.state_dir.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._make_keys()
        state = FleetState(octet2=self.octet2)
        self._ensure_mountpoints()
        hosts = [Host(name=f"fleet-h{i}", address=f"127.{self.octet2}.0.{10 + i}") for i in range(1, count + 1)]
        for host in hosts:
            self._refuse_busy_address(host.address)
        try:
            for host in hosts:
                self._prepare_host(host)
                host.pid = self._start_host(host)
                state.hosts.append(host)
                self.save(state)
            for host in hosts:
                self._wait_for_ssh(host)
                host.mnt_ns = os.readlink(f"/proc/{host.pid}/ns/mnt")
            if moto:
                state.moto_pid, state.moto_port = self._start_moto()
            self.save(state)
        except BaseException:
            self.save(state)
            self.down()
            raise
        self._write_inventory(state)
        self._write_ansible_cfg()
        return state

    def _make_keys(self) -> None:
        for key in (self.client_key, self.state_dir / "ssh_host_ed25519_key"):
            if not key.exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet", "-f", str(key)],
                               check=True)

    @staticmethod
    def _ensure_mountpoints() -> None:
        """The private paths' mountpoints, made where the machine lacks them and recorded for the last fleet's down
        (this fleet's state directory exists already: a fleet going down meanwhile leaves them)."""
        with mountpoints_locked():
            created = [path for path in PRIVATE_DIRS if not os.path.isdir(path)]
            for path in created:
                os.makedirs(path)
            if created:
                MOUNTPOINTS_RECORD.parent.mkdir(parents=True, exist_ok=True)
                with open(MOUNTPOINTS_RECORD, "a") as record:
                    record.write("".join(f"{path}\n" for path in created))

    @staticmethod
    def _refuse_busy_address(address: str) -> None:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((address, 22)) == 0:
                raise FleetError(f"{address}:22 is already in use by another process; choose another FLEET_OCTET2 "
                                 "or stop that fleet (tests/fleet/fleet down)")

    def _prepare_host(self, host: Host) -> None:
        hdir = self.host_dir(host.name)
        for backing in PRIVATE_DIRS.values():
            (hdir / "fs" / backing).mkdir(parents=True, exist_ok=True)
        (hdir / "fs" / "tmp").chmod(0o1777)
        os.chown(hdir / "fs" / "home-deploy", DEPLOY_UID, DEPLOY_UID)
        etc = hdir / "etc"
        etc.mkdir(exist_ok=True)
        passwd = Path("/etc/passwd").read_text()
        group = Path("/etc/group").read_text()
        shadow = Path("/etc/shadow").read_text()
        if "\ndeploy:" not in "\n" + passwd:
            passwd += f"deploy:x:{DEPLOY_UID}:{DEPLOY_UID}:Fleet deploy user:/home/deploy:/bin/bash\n"
        if "\ndeploy:" not in "\n" + group:
            group += f"deploy:x:{DEPLOY_UID}:\n"
        if "\ndeploy:" not in "\n" + shadow:
            shadow += "deploy:!:19000:0:99999:7:::\n"
        (etc / "passwd").write_text(passwd)
        (etc / "group").write_text(group)
        (etc / "shadow").write_text(shadow)
        (etc / "shadow").chmod(0o640)
        (etc / "hostname").write_text(host.name + "\n")
        # sudo and su look the host's own name up; each host resolves itself to its loopback address.
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{host.address} {host.name}\n")
        (hdir / "no-yaml.py").write_text(HIDDEN_PACKAGE_INIT)
        (hdir / "sshd_config").write_text(self._sshd_config(host))

    def _sshd_config(self, host: Host) -> str:
        return "\n".join([
            f"ListenAddress {host.address}:22",
            f"HostKey {self.state_dir / 'ssh_host_ed25519_key'}",
            "PidFile none",
            f"AuthorizedKeysFile {self.client_key}.pub",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            # ControlPersist keeps one master per host; forks open many sessions over it.
            "MaxSessions 100",
            "MaxStartups 200:30:400",
            "Subsystem sftp internal-sftp",
            "LogLevel ERROR",
            "",
        ])

    def _start_host(self, host: Host) -> int:
        hdir = self.host_dir(host.name)
        log = open(hdir / "sshd.log", "ab")
        # unshare execs our namespace init in place, which execs sshd: the recorded PID is sshd's.
        proc = subprocess.Popen(
            ["unshare", "--mount", "--uts", "--propagation", "private", "--",
             sys.executable, str(Path(__file__).resolve()), "_hostinit", str(self.state_dir), host.name],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True)
        log.close()
        return proc.pid

    def _wait_for_ssh(self, host: Host, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(host.pid):
                log = (self.host_dir(host.name) / "sshd.log").read_text(errors="replace")[-2000:]
                raise FleetError(f"sshd of {host.name} exited at start:\n{log}")
            try:
                with socket.create_connection((host.address, 22), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise FleetError(f"{host.name} ({host.address}:22) did not accept SSH within {timeout:.0f} s")

    def _start_moto(self) -> tuple[int, int]:
        moto_server = shutil.which("moto_server", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                                        os.environ.get("PATH", "")]))
        if not moto_server:
            raise FleetError("moto_server not found: run from the project's virtualenv (make test does)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        log = open(self.state_dir / "moto.log", "ab")
        proc = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(port)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True, close_fds=True)
        log.close()
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise FleetError(f"moto_server exited at start; see {self.state_dir / 'moto.log'}")
            try:
                # Lambda invocations must not try to reach a Docker engine; there is none here.
                request = urllib.request.Request(f"{endpoint}/moto-api/config", method="POST",
                                                 data=json.dumps({"lambda": {"use_docker": False}}).encode(),
                                                 headers={"Content-Type": "application/json"})
                urllib.request.urlopen(request, timeout=2).read()
                return proc.pid, port
            except OSError:
                time.sleep(0.1)
        _terminate({proc.pid})  # not yet recorded in the state: stop it here, or nothing ever would
        raise FleetError(f"moto_server did not answer on {endpoint} within 30 s")

    def _write_inventory(self, state: FleetState) -> None:
        self.inventory.write_text(render_inventory(self, state.hosts))

    def _write_ansible_cfg(self) -> None:
        self.ansible_cfg.write_text("\n".join([
            "[defaults]",
            "host_key_checking = False",
            "forks = 20",
            "gathering = explicit",
            "interpreter_python = /usr/bin/python3",
            "",
            "[ssh_connection]",
            "pipelining = True",
            # No -C (Ansible's default adds it): on a local network, compressing bundles costs more CPU than it saves.
            "ssh_args = -o ControlMaster=auto -o ControlPersist=120s",
            "",
        ]))

    # ----- down --------------------------------------------------------------------------------------------
    def down(self) -> None:
        state = self.load()
        if state is not None:
            self.stop_processes(state)
        with mountpoints_locked():
            if self.state_dir.exists():
                shutil.rmtree(self.state_dir)
            if not any(path.is_dir() for path in FLEETS_ROOT.glob("*/*")):
                remove_recorded_mountpoints()
        for parent in (state_root(), state_root().parent):
            try:
                parent.rmdir()  # only when no other fleet of this or another checkout is left there
            except OSError:
                pass

    def stop_processes(self, state: FleetState) -> None:
        """Stop every process living in a host's namespace (sshd and whatever hooks left), and moto."""
        namespaces = {h.mnt_ns for h in state.hosts if h.mnt_ns}
        victims = {host.pid for host in state.hosts if _is_sshd_of(host, self)}
        if namespaces:
            victims |= {pid for pid in _all_pids() if _mnt_ns(pid) in namespaces}
        if state.moto_pid and _alive(state.moto_pid) and "moto" in _cmdline(state.moto_pid):
            victims.add(state.moto_pid)
        victims.discard(os.getpid())
        _terminate(victims)

    # ----- reset -------------------------------------------------------------------------------------------
    def reset(self, names: list[str] | None = None) -> None:
        """Stop what hooks left running on the given hosts (all by default) and empty their private directories,
        as on a fresh machine."""
        state = self.load()
        if state is None:
            raise FleetError(f"no fleet at {self.state_dir}; run: tests/fleet/fleet up N")
        for host in state.hosts:
            if names and host.name not in names:
                continue
            _terminate(_detached_processes(host))
            for backing in PRIVATE_DIRS.values():
                root = self.host_dir(host.name) / "fs" / backing
                for child in root.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()


def render_inventory(fleet: Fleet, hosts: list[Host], group: str = "fleet") -> str:
    """YAML inventory text for ``hosts`` (written by hand: the fleet script needs no PyYAML)."""
    lines = ["all:", "  children:", f"    {group}:", "      hosts:"]
    for host in hosts:
        lines.append(f"        {host.name}:")
        lines.append(f"          ansible_host: {host.address}")
    lines += [
        "      vars:",
        "        ansible_user: root",
        "        ansible_port: 22",
        f"        ansible_ssh_private_key_file: {fleet.client_key}",
        "        ansible_ssh_common_args: -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no"
        " -o LogLevel=ERROR",
        "        ansible_python_interpreter: /usr/bin/python3",
        "",
    ]
    return "\n".join(lines)


def remove_recorded_mountpoints() -> None:
    """The mountpoints the fleets made (no fleet is left to use them), those still empty."""
    if not MOUNTPOINTS_RECORD.exists():
        return
    for path in reversed(MOUNTPOINTS_RECORD.read_text().split()):
        try:
            os.rmdir(path)
        except OSError:
            pass
    MOUNTPOINTS_RECORD.unlink()


# ----- inside the host namespace -----------------------------------------------------------------------------
def host_init(state_dir: str, name: str) -> None:
    """Runs inside the new namespaces: private mounts, hostname, then exec sshd in place."""
    fleet = Fleet(state_dir)
    hdir = fleet.host_dir(name)
    socket.sethostname(name)
    for path, backing in PRIVATE_DIRS.items():
        _bind(hdir / "fs" / backing, path)
    for path in PRIVATE_FILES:
        _bind(hdir / "etc" / os.path.basename(path), path)
    for package in HIDDEN_PYTHON_PACKAGES:
        if os.path.exists(os.path.join(package, "__init__.py")):
            _bind(hdir / "no-yaml.py", os.path.join(package, "__init__.py"))
    os.execv(SSHD, [SSHD, "-D", "-e", "-f", str(hdir / "sshd_config")])


def _bind(source: Path, target: str) -> None:
    subprocess.run(["mount", "--bind", str(source), target], check=True)


# ----- process helpers ---------------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _is_sshd_of(host: Host, fleet: Fleet) -> bool:
    return _alive(host.pid) and str(fleet.host_dir(host.name) / "sshd_config") in _cmdline(host.pid)


def _mnt_ns(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return ""


def _parent_pid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _detached_processes(host: Host) -> set[int]:
    """The processes in ``host``'s mount namespace outside its sshd's tree: daemons that hooks started (sshd's
    tree holds the sessions of ansible's persistent connections, which must survive)."""
    if not host.mnt_ns:
        return set()
    parents = {pid: _parent_pid(pid) for pid in _all_pids() if _mnt_ns(pid) == host.mnt_ns}
    sshd_tree, pending = set(), [host.pid]
    while pending:
        parent = pending.pop()
        sshd_tree.add(parent)
        pending += [pid for pid, ppid in parents.items() if ppid == parent and pid not in sshd_tree]
    return set(parents) - sshd_tree


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _terminate(pids: set[int], grace: float = 5.0) -> None:
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# ----- command line ------------------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    if argv[:1] == ["_hostinit"]:
        host_init(argv[1], argv[2])
        return 0
    parser = argparse.ArgumentParser(prog="fleet", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--state", help="state directory (default: $FLEET_STATE, else one per checkout and octet "
                                        "under /var/tmp/fleetops-fleet)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start N hosts (and a moto server) and write the inventory")
    up.add_argument("count", type=int)
    up.add_argument("--no-moto", action="store_true", help="do not start a moto server")
    sub.add_parser("down", help="stop everything the fleet started and remove its state")
    sub.add_parser("status", help="print the hosts, their PIDs and the moto endpoint")
    reset = sub.add_parser("reset", help="empty the private directories of hosts")
    reset.add_argument("hosts", nargs="*")
    sub.add_parser("endpoint", help="print the moto endpoint URL")
    sub.add_parser("inventory", help="print the path of the fleet's inventory")
    sub.add_parser("config", help="print the path of the fleet's ansible.cfg")
    args = parser.parse_args(argv)
    fleet = Fleet(args.state)
    try:
        if args.command == "up":
            state = fleet.up(args.count, moto=not args.no_moto)
            print(f"fleet up: {len(state.hosts)} hosts; inventory {fleet.inventory}; ansible.cfg {fleet.ansible_cfg}"
                  + (f"; moto {state.endpoint}" if state.moto_port else ""))
        elif args.command == "down":
            fleet.down()
            print(f"fleet down: {fleet.state_dir} removed")
        elif args.command == "reset":
            fleet.reset(args.hosts)
        else:
            state = fleet.load()
            if state is None:
                raise FleetError(f"no fleet at {fleet.state_dir}")
            if args.command == "endpoint":
                print(state.endpoint)
            elif args.command == "inventory":
                print(fleet.inventory)
            elif args.command == "config":
                print(fleet.ansible_cfg)
            else:
                for host in state.hosts:
                    print(f"{host.name}\t{host.address}\tpid {host.pid}\t{'up' if _alive(host.pid) else 'DOWN'}")
                if state.moto_port:
                    print(f"moto\t{state.endpoint}\tpid {state.moto_pid}\t{'up' if _alive(state.moto_pid) else 'DOWN'}")
    except FleetError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
