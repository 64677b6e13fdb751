"""Container helpers on the real engine: labels, loopback ports, server loss and its inverses."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from chaos.stack.containers import (
    ContainerNotReady,
    ContainerSpec,
    ManagedContainer,
    RunNetwork,
    run_container,
    run_network,
    tcp_probe,
    wait_ready,
)
from chaos.images import ImageSet
from chaos.labels import INSTANCE, RUN, SERVICE, RunIdentity


@pytest.fixture(scope="module")
def identity() -> RunIdentity:
    return RunIdentity()


@pytest.fixture(scope="module")
def network(docker_engine, identity: RunIdentity) -> Iterator[RunNetwork]:
    with run_network(docker_engine, identity) as net:
        yield net


@pytest.fixture
def redis(docker_engine, identity: RunIdentity, network: RunNetwork, stack_images: ImageSet) -> Iterator[ManagedContainer]:
    spec = ContainerSpec(
        image=stack_images.base.ref,
        name=f"state-{id(object())}",
        service="state",
        instance="state-1",
        command=["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", ""],
        ports=(6379,),
        pin_ip=True,
    )
    with run_container(docker_engine, identity, network, spec) as managed:
        wait_ready(managed, ping_probe(managed.address(6379)), timeout=60)
        yield managed


def _ping(conn: socket.socket) -> bytes:
    conn.sendall(b"PING\r\n")
    return conn.recv(64)


def ping_probe(address: tuple[str, int]):
    """Ready only when Redis answers: stronger than tcp_probe on a machine too busy
    for the engine's port proxy to close a refused connection within its settle time."""

    def probe() -> bool:
        try:
            with socket.create_connection(address, timeout=2) as conn:
                conn.settimeout(5)
                return _ping(conn) == b"+PONG\r\n"
        except OSError:
            return False

    return probe


def test_everything_is_labelled_and_published_on_loopback_only(redis: ManagedContainer, network: RunNetwork, identity) -> None:
    # the handle is sparse until inspected (create_container makes one engine call); a probe that passed at
    # once never made wait_ready inspect it
    redis.container.reload()
    labels = redis.container.labels
    assert labels[RUN] == identity.run_id and labels[SERVICE] == "state" and labels[INSTANCE] == "state-1"
    assert network.network.attrs["Labels"][RUN] == identity.run_id
    bindings = redis.container.attrs["HostConfig"]["PortBindings"]["6379/tcp"]
    assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
    assert redis.container.attrs["HostConfig"]["Init"] is True and redis.container.attrs["HostConfig"]["Privileged"] is False


def test_kill_and_stop_then_start_keep_the_host_port(redis: ManagedContainer) -> None:
    address = redis.address(6379)
    for fault in (redis.kill, redis.stop):
        fault()
        assert redis.state() == "exited"
        assert not tcp_probe(*address)()
        redis.start()
        wait_ready(redis, ping_probe(address), timeout=60)
        with socket.create_connection(address, timeout=5) as conn:
            assert _ping(conn) == b"+PONG\r\n"
    redis.restart()
    wait_ready(redis, ping_probe(address), timeout=60)
    assert redis.address(6379) == address


def test_pause_holds_replies_until_unpause(redis: ManagedContainer) -> None:
    with socket.create_connection(redis.address(6379), timeout=5) as conn:
        redis.pause()
        assert redis.state() == "paused"
        conn.settimeout(0.5)
        conn.sendall(b"PING\r\n")
        with pytest.raises(TimeoutError):
            conn.recv(64)
        redis.unpause()
        conn.settimeout(10)
        assert conn.recv(64) == b"+PONG\r\n"


# A client on the run network holds one connection to state-1 across the
# fault: PING, wait for /tmp/go, PING again on the same socket.
HOLDER = """
import os, socket, sys, time
conn = socket.create_connection(("state-1", 6379), timeout=10)
conn.sendall(b"PING\\r\\n"); print("first", conn.recv(64), flush=True)
while not os.path.exists("/tmp/go"):
    time.sleep(0.05)
conn.sendall(b"PING\\r\\n"); print("second", conn.recv(64), flush=True)
"""


def test_disconnect_and_reconnect_keep_the_address_and_open_connections(
    docker_engine, redis: ManagedContainer, network: RunNetwork, identity: RunIdentity, stack_images: ImageSet
) -> None:
    ip = redis.ip
    assert ip is not None and ipaddress_in(ip, network)
    spec = ContainerSpec(
        image=stack_images.base.ref, name=f"holder-{id(object())}", service="crowd", instance="crowd-1",
        command=["python3", "-c", HOLDER],
    )  # fmt: skip
    with run_container(docker_engine, identity, network, spec) as holder:
        wait_ready(holder, lambda: "first" in holder.logs(), timeout=30)
        redis.disconnect()
        assert not tcp_probe(*redis.address(6379))()  # nothing reaches it now
        redis.reconnect()
        redis.container.reload()
        attached = redis.container.attrs["NetworkSettings"]["Networks"][network.name]
        assert attached["IPAddress"] == ip and "state-1" in (attached.get("Aliases") or [])
        holder.container.exec_run(["touch", "/tmp/go"])
        assert holder.container.wait(timeout=30)["StatusCode"] == 0
        assert "second b'+PONG\\r\\n'" in holder.logs()  # the held flow resumed: same address back
    wait_ready(redis, ping_probe(redis.address(6379)), timeout=60)  # and the published port is back
    with socket.create_connection(redis.address(6379), timeout=5) as conn:
        assert _ping(conn) == b"+PONG\r\n"


def ipaddress_in(ip: str, network: RunNetwork) -> bool:
    import ipaddress

    return network.subnet is not None and ipaddress.ip_address(ip) in network.subnet


def test_squeeze_caps_cpu_and_memory_and_unsqueeze_gives_them_back(redis: ManagedContainer) -> None:
    redis.squeeze(cpus=0.2, memory_mb=96)
    redis.container.reload()
    host = redis.container.attrs["HostConfig"]
    assert host["CpuQuota"] == 20_000 and host["CpuPeriod"] == 100_000 and host["Memory"] == 96 * 2**20
    quota = redis.container.exec_run(["cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"]).output.decode().strip()
    if quota:  # cgroup v1 layout (v2 has cpu.max)
        assert quota == "20000"
    redis.unsqueeze()
    redis.container.reload()
    host = redis.container.attrs["HostConfig"]
    assert host["CpuQuota"] in (0, -1) and host["Memory"] > 2**30
    with socket.create_connection(redis.address(6379), timeout=5) as conn:
        assert _ping(conn) == b"+PONG\r\n"


def test_a_container_that_exits_fails_readiness_fast_with_its_last_words(
    docker_engine, identity: RunIdentity, network: RunNetwork, stack_images: ImageSet
) -> None:
    spec = ContainerSpec(
        image=stack_images.base.ref, name="doomed", service="edge", instance="edge-9",
        command=["sh", "-c", "echo boom-before-listen; exit 3"], ports=(8765,),
    )  # fmt: skip
    with run_container(docker_engine, identity, network, spec) as doomed:
        with pytest.raises(ContainerNotReady) as caught:
            wait_ready(doomed, ping_probe(doomed.address(8765)), timeout=60)
    assert "exited before it was ready" in str(caught.value) and "boom-before-listen" in caught.value.one_line()
