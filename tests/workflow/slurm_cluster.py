"""A throw-away one-node SLURM cluster for the workflow tests (test_slurm.py).

Everything lives in one temporary directory: munge key and socket, slurm.conf,
gres.conf, cgroup.conf, state, spool and logs; clients find it through the
SLURM_CONF environment variable. The daemons (munged, slurmctld, slurmd) run in the
foreground as children of the test process and are stopped at the end, after every
job of the cluster is cancelled; leftover job processes are found by the cluster's
own SLURM_CONF in their environment, so nothing else on the machine is touched.

Needs root (slurmd launches jobs) and the Debian packages slurmctld, slurmd,
slurm-client and munge (SLURM 22.05 on bookworm). On root + Debian the packages are
installed with apt-get when missing (set NTKADV_SLURM_INSTALL=0 to forbid that);
elsewhere `unavailable()` names what is missing and the tests skip. No slurmdbd:
accounting is off, so `sacct` does not work here and the status command is squeue.

Memory is enforced the way clusters do it when the cgroup v1 memory controller is
mounted and writable (task/cgroup, ConstrainRAMSpace: the kernel kills a job over
its --mem and the job ends OUT_OF_MEMORY); otherwise by polling (jobacct_gather/linux
with OverMemoryKill, every second: the job ends FAILED). `memory_enforcement` says
which one a cluster uses.
Fake GPUs are GRES devices backed by /dev/null and /dev/zero (gres.conf needs a
File= per device; `Count=` alone registers no GPU and drains the node).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")
PARTITION = "ci"
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")
#: Partition time limit in minutes: what the shipped profile's runtime cap must fit.
PARTITION_MAX_MIN = 2880


def _missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


def _is_debian() -> bool:
    return Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None


def install_packages(timeout: float = 600) -> None:
    """apt-get install the SLURM and munge packages (root, Debian)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
    ):
        subprocess.run(cmd, check=True, env=env, timeout=timeout, capture_output=True)


def unavailable() -> str | None:
    """Why no cluster can be started here (None: it can, after installing what is
    missing on root + Debian)."""
    if os.geteuid() != 0:
        return "a SLURM cluster needs root (slurmd launches the jobs)"
    missing = _missing_binaries()
    if not missing:
        return None
    if not _is_debian():
        return f"SLURM binaries {missing} missing and this is not Debian (no apt-get)"
    if os.environ.get("NTKADV_SLURM_INSTALL", "1") == "0":
        return f"SLURM binaries {missing} missing and NTKADV_SLURM_INSTALL=0"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cgroup_v1_memory() -> bool:
    """Whether the cgroup v1 memory controller is mounted here and writable."""
    probe = CGROUP_V1_MEMORY / f"ntkadv_probe_{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


def _mem_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class SlurmCluster:
    """One node (2 CPUs, 2 fake GPUs) in partition `ci`, all files under `root`.

    The node name and the first job id are unique to the process, so two clusters
    on one machine do not share cgroup directories (slurm_<node>/uid_0/job_<id>).
    """

    def __init__(self, root: Path, cpus: int = 2, gpus: int = 2) -> None:
        self.root = root
        self.node = f"ci{os.getpid()}"
        self.memory_enforcement = "cgroup" if cgroup_v1_memory() else "polling"
        self.cpus = cpus
        self.gpus = gpus
        self.conf = root / "etc/slurm.conf"
        self.logs = root / "log"
        self.procs: dict[str, subprocess.Popen] = {}
        # RealMemory must not exceed what slurmd detects, or the node drains.
        self.mem_mb = min(16000, int(_mem_total_mb() * 0.8))
        # `srun` first on the jobs' PATH: a wrapper that sets SLURM_CONF again. The
        # jobstep plugin deletes every SLURM_* variable but the job ids before its
        # inner srun (snakemake-executor-plugin-slurm issue #164), so without it
        # srun finds no configuration (a site's /etc/slurm/slurm.conf is not there).
        self.bin = root / "bin"
        self.env = {
            **os.environ,
            "SLURM_CONF": str(self.conf),
            "PATH": f"{self.bin}:{os.environ['PATH']}",
        }

    # ------------------------------------------------------------ configuration

    def write_config(self) -> None:
        for sub in ("etc", "log", "state", "spool", "munge", "bin"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        srun = self.bin / "srun"
        srun.write_text(
            f'#!/bin/sh\nSLURM_CONF={self.conf} exec {shutil.which("srun")} "$@"\n'
        )
        srun.chmod(0o755)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge/munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        host = socket.gethostname().split(".")[0]
        devices = ["/dev/null", "/dev/zero"][: self.gpus]
        r = self.root
        if self.memory_enforcement == "cgroup":
            plugins = (
                "ProctrackType=proctrack/cgroup\nTaskPlugin=task/cgroup\n"
                "JobAcctGatherType=jobacct_gather/cgroup\n"
            )
            cgroup = (
                "CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\n"
                "ConstrainRAMSpace=yes\nConstrainSwapSpace=yes\n"
            )
        else:
            plugins = (
                "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
                "JobAcctGatherType=jobacct_gather/linux\n"
                "JobAcctGatherParams=OverMemoryKill\n"
            )
            cgroup = "CgroupPlugin=autodetect\nConstrainRAMSpace=no\n"
        self.conf.write_text(
            f"""\
ClusterName=ntkadvci
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={r}/munge/munge.socket
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={self.logs}/slurmctld.log
SlurmdLogFile={self.logs}/slurmd.log
{plugins}SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherFrequency=task=1
FirstJobId={1000 + os.getpid() % 100000}
EnforcePartLimits=ALL
MinJobAge=600
ReturnToService=2
SchedulerType=sched/backfill
MpiDefault=none
GresTypes=gpu
NodeName={self.node} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={self.cpus} \
RealMemory={self.mem_mb} Gres=gpu:{len(devices)} State=UNKNOWN
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime={PARTITION_MAX_MIN} \
State=UP
"""
        )
        (self.root / "etc/gres.conf").write_text(
            "".join(f"NodeName={self.node} Name=gpu File={d}\n" for d in devices)
        )
        (self.root / "etc/cgroup.conf").write_text(cgroup)

    # ------------------------------------------------------------ life cycle

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.logs / f"{name}.stderr", "wb")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def start(self, timeout: float = 60) -> None:
        """Write the configuration, start the daemons, wait for an idle node."""
        if _missing_binaries():
            install_packages()
        self.write_config()
        m = self.root / "munge"
        self._spawn(
            "munged",
            [
                shutil.which("munged") or "munged",
                "--foreground",
                "--force",
                f"--socket={m}/munge.socket",
                f"--key-file={m}/munge.key",
                f"--pid-file={m}/munged.pid",
                f"--log-file={self.logs}/munged.log",
                f"--seed-file={m}/munged.seed",
            ],
        )
        self._wait(lambda: (m / "munge.socket").exists(), 15, "munged socket")
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
        self._wait(lambda: self.sinfo() is not None, timeout, "slurmctld answering")
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf)])
        self._wait(lambda: self.sinfo() == "idle", timeout, "node idle")

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited ({proc.returncode}) waiting for {what}:\n"
                        + self.log_tail()
                    )
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"timed out after {timeout} s waiting for {what}:\n" + self.log_tail()
        )

    def sinfo(self) -> str | None:
        """State of the node as sinfo reports it (None: no answer)."""
        proc = self.run(["sinfo", "-h", "-n", self.node, "-o", "%T"], check=False)
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    def run(self, cmd: list[str], check: bool = True, timeout: float = 30):
        """A SLURM client command against this cluster."""
        return subprocess.run(
            cmd,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def log_tail(self, lines: int = 15) -> str:
        out = []
        for log in sorted(self.logs.glob("*")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    def _own_pids(self) -> list[int]:
        """Processes started by this cluster: their environment names its conf."""
        marker = f"SLURM_CONF={self.conf}".encode()
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                environ = (proc / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker in environ:
                pids.append(int(proc.name))
        return pids

    def stop(self) -> None:
        """Cancel every job, stop the daemons, kill what they left behind."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                self.run(["scancel", "--full", "--user", "root"], check=False)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    queue = self.run(
                        ["squeue", "-h", "-t", "active", "-o", "%i"], check=False
                    )
                    if queue.returncode != 0 or not queue.stdout.strip():
                        break
                    time.sleep(0.5)
            except subprocess.TimeoutExpired:
                pass  # the daemons are stopped and their processes killed below
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for pid in self._own_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # The (empty) cgroup directories slurmd made for this node.
        for top in Path("/sys/fs/cgroup").glob(f"*/slurm_{self.node}"):
            for directory, _, _ in os.walk(top, topdown=False):
                try:
                    os.rmdir(directory)
                except OSError:
                    pass

    def __enter__(self) -> SlurmCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
