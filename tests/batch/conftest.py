"""A real single-node SLURM cluster on this host (munged, slurmctld, slurmd), for the tests that ask for it.

Everything lives in one temporary directory: the munge key and socket, a
slurm.conf for this host (its name, cores and memory as ``slurmd -C`` reports
them), state, spool and logs.  The daemons run as root on free ports; the
fixture points ``SLURM_CONF`` at the file (sbatch, squeue and scancel read it),
waits until ``sinfo`` shows the node idle, and at the end cancels the jobs,
stops the daemons and removes the directory.  Tests using it are skipped only
where the binaries are missing (``apt-get install slurm-wlm munge``) or the
test run is not root.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue", "scancel")
PARTITION = "climode"


@dataclass
class Slurm:
    """The running test cluster: its config file and partition."""

    conf: Path
    root: Path
    partition: str = PARTITION

    def env(self) -> dict[str, str]:
        return dict(os.environ, SLURM_CONF=str(self.conf))

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), env=self.env(), capture_output=True, text=True, timeout=60, check=check)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted((self.root / "log").glob("*")) if p.is_file())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, seconds: float, what: str, slurm: Slurm | None = None) -> None:
    deadline = time.time() + seconds
    while not predicate():
        if time.time() > deadline:
            raise RuntimeError(f"the test SLURM cluster: {what} did not happen in {seconds:g} s\n"
                               + (slurm.logs() if slurm else ""))
        time.sleep(0.2)


def _node_line() -> str:
    """``NodeName=... CPUs=... RealMemory=...`` of this host, as slurmd detects it."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True, timeout=60).stdout
    return next(line for line in out.splitlines() if line.startswith("NodeName="))


def _kill_pidfile(path: Path) -> None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:  # it ended between the last check and now (seen once: slurmctld after 5 s)
        pass


@pytest.fixture(scope="session")
def slurm_cluster():
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        pytest.skip(f"SLURM/munge binaries missing ({', '.join(missing)}): apt-get install slurm-wlm munge")
    if os.geteuid() != 0:
        pytest.skip("the test SLURM cluster runs its daemons as root; run the tests as root")
    # munged wants every directory up to its socket searchable by all, and nothing group/world-writable
    root = Path(tempfile.mkdtemp(prefix="climode-slurm-"))
    root.chmod(0o755)
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(mode=0o755)
        (root / sub).chmod(0o755)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    sock = root / "munge" / "munge.socket"
    node = _node_line()
    host = node.split()[0].split("=", 1)[1]
    conf = root / "slurm.conf"
    conf.write_text(f"""# written by climode's tests (tests/batch/conftest.py)
ClusterName=climodetest
SlurmctldHost={host}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
{node} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    slurm = Slurm(conf=conf, root=root)
    env = slurm.env()
    old_conf = os.environ.get("SLURM_CONF")
    try:
        subprocess.run(["munged", f"--key-file={key}", f"--socket={sock}", f"--log-file={root / 'log' / 'munged.log'}",
                        f"--pid-file={root / 'munge' / 'munged.pid'}", f"--seed-file={root / 'munge' / 'seed'}"],
                       check=True, timeout=30, capture_output=True)
        subprocess.run(["slurmctld"], env=env, check=True, timeout=30, capture_output=True)
        subprocess.run(["slurmd"], env=env, check=True, timeout=30, capture_output=True)
        _wait(lambda: slurm.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip() == "idle", 60,
              "the node becoming idle", slurm)
        os.environ["SLURM_CONF"] = str(conf)  # for dask-jobqueue's sbatch/scancel in this process
        yield slurm
    finally:
        if old_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old_conf
        if (root / "slurmctld.pid").exists():
            slurm.run("scancel", "--full", f"--partition={PARTITION}", check=False)
            try:
                _wait(lambda: not slurm.run("squeue", "-h", check=False).stdout.strip(), 30, "jobs ending")
            except RuntimeError:
                pass
        for pidfile in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
            _kill_pidfile(root / pidfile)
        shutil.rmtree(root, ignore_errors=True)
