import os
import subprocess
import sys

from chaos import labels


def test_own_labels_are_alive():
    identity = labels.RunIdentity()
    assert labels.owner_alive(identity.labels())
    assert identity.labels()[labels.RUN] == identity.run_id


def test_dead_process_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = labels.RunIdentity(pid=child.pid).labels()
    # the pid may be reused, but then the start time differs
    dead[labels.OWNER_START] = dead[labels.OWNER_START] or "0"
    assert not labels.owner_alive(dead) or os.path.exists(f"/proc/{child.pid}")


def test_reused_pid_is_not_alive():
    stale = labels.RunIdentity().labels()
    stale[labels.OWNER_START] = "1"  # our pid, but started at another time
    assert not labels.owner_alive(stale)


def test_keep_and_foreign_host_are_never_swept():
    assert labels.owner_alive({labels.KEEP: "1"})
    assert labels.owner_alive({labels.OWNER_HOST: "elsewhere", labels.OWNER_PID: "1"})
