// @testcontainers/toxiproxy, unchanged, with roomquake's proxy image in place of Toxiproxy's:
// start the container, create a proxy to an upstream, add a toxic through the
// client it hands out, check the effect from the host through a real connection.
//
//   PROXY_IMAGE=roomquake/proxy:<hash> RUN_LABELS='{"io.roomquake.run":...}' NETWORK=rq-... \
//   UPSTREAM=echo:7000 node testcontainers-toxiproxy.mjs
//
// UPSTREAM is a line echo server that the container reaches on NETWORK.
// Nothing is pulled: the script stops first if PROXY_IMAGE is not present locally.
import assert from "node:assert/strict";
import { ToxiProxyContainer } from "@testcontainers/toxiproxy";
import { ImageName, getContainerRuntimeClient } from "testcontainers";
import { EchoConnection, check, finish, medianRoundTrip, required } from "./lib.mjs";

const image = required("PROXY_IMAGE");
const labels = JSON.parse(required("RUN_LABELS"));
const network = required("NETWORK");
const upstream = required("UPSTREAM");
const LATENCY = 400;

// The module publishes its 33 ports on every interface and has no option for
// the host address; its GenericContainer offers subclasses a hook just before
// the container is created, which is where we bind them to 127.0.0.1.
class LoopbackToxiProxyContainer extends ToxiProxyContainer {
  async beforeContainerCreated() {
    for (const bindings of Object.values(this.hostConfig.PortBindings ?? {})) {
      for (const binding of bindings) binding.HostIp = "127.0.0.1";
    }
  }
}

// Read by testcontainers when it first talks to the engine (below), not at import:
// - no Ryuk reaper: its image cannot be pulled here; the run labels let
//   `roomquake clean` find a container a killed script left behind;
// - the host is 127.0.0.1: where /.dockerenv exists testcontainers would
//   otherwise reach ports through the bridge gateway, or start an alpine
//   container (a pull) to find one.
process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
process.env.TESTCONTAINERS_HOST_OVERRIDE = "127.0.0.1";
const runtime = await getContainerRuntimeClient();
if (!(await runtime.image.exists(ImageName.fromString(image)))) {
  console.error(`FAIL setup: ${image} is not present locally (build it with: roomquake images build); nothing is pulled`);
  process.exit(2);
}

let container;
let proxy;
let conn;

try {
  await check("ToxiProxyContainer(image).start() waits for /version on 8474 and hands out a client", async () => {
    container = await new LoopbackToxiProxyContainer(image).withLabels(labels).withNetworkMode(network).start();
    const version = JSON.parse(await container.client.getVersion()).version;
    assert.match(version, /^\d+\.\d+\.\d+/);
    return `${container.getId().slice(0, 12)}, version ${version}`;
  });

  await check("the container carries the run's labels and publishes on 127.0.0.1 only", async () => {
    const got = container.getLabels();
    for (const [key, value] of Object.entries(labels)) assert.equal(got[key], value, key);
    const info = await runtime.container.getById(container.getId()).inspect();
    const published = Object.values(info.NetworkSettings.Ports ?? {}).flat().filter(Boolean);
    assert.equal(published.length, 33, "8474 and the 32 proxied ports");
    assert.deepEqual([...new Set(published.map((b) => b.HostIp))], ["127.0.0.1"]);
    return `${published.length} ports`;
  });

  await check("createProxy listens on the first free port of 8666..8697, reachable from the host", async () => {
    proxy = await container.createProxy({ name: "echo", upstream });
    // The port is what the module relies on; the host part is the server's to spell
    // (ours echoes 0.0.0.0, Go's listener may report [::] for the same socket).
    assert.match(proxy.instance.listen, /:8666$/);
    assert.equal(proxy.instance.upstream, upstream);
    assert.equal(proxy.port, container.getMappedPort(8666));
    conn = await EchoConnection.open(proxy.host, proxy.port);
    const ms = await medianRoundTrip(conn, "plain");
    return `${proxy.host}:${proxy.port} -> ${upstream}, round trip ${ms.toFixed(1)} ms`;
  });

  await check("a second proxy takes the next port", async () => {
    const second = await container.createProxy({ name: "echo2", upstream });
    assert.match(second.instance.listen, /:8667$/);
    const c = await EchoConnection.open(second.host, second.port);
    await medianRoundTrip(c, "second", 1);
    c.destroy();
    await second.instance.remove();
  });

  await check("a latency toxic through the client it returns delays the host's connection", async () => {
    const toxic = await proxy.instance.addToxic({
      name: "lag", type: "latency", stream: "downstream", toxicity: 1, attributes: { latency: LATENCY, jitter: 0 },
    });
    assert.deepEqual(toxic.toJson().attributes, { latency: LATENCY, jitter: 0 });
    const ms = await medianRoundTrip(conn, "lag");
    assert.ok(ms >= LATENCY * 0.9, `round trip ${ms.toFixed(1)} ms with ${LATENCY} ms latency`);
    await toxic.remove();
    const after = await medianRoundTrip(conn, "unlagged");
    assert.ok(after < LATENCY * 0.75, `round trip ${after.toFixed(1)} ms after removing the toxic`);
    return `round trip ${ms.toFixed(1)} ms with the toxic, ${after.toFixed(1)} ms without`;
  });

  await check("setEnabled(false) cuts the connection and nothing echoes; setEnabled(true) restores", async () => {
    const disabled = await proxy.setEnabled(false);
    assert.equal(disabled.enabled, false);
    const how = await conn.waitClosed();
    // Docker's port publishing accepts on the host side whatever the container
    // does, so "down" shows as a connection closed without an echo, not a refusal.
    const probe = await EchoConnection.open(proxy.host, proxy.port).catch((err) => err);
    if (probe instanceof EchoConnection) {
      await assert.rejects(probe.roundTrip("down", 5000), /closed|no data/);
      probe.destroy();
    }
    const enabled = await proxy.setEnabled(true);
    assert.equal(enabled.enabled, true);
    conn = await EchoConnection.open(proxy.host, proxy.port);
    await medianRoundTrip(conn, "up", 1);
    return `live connection: ${how}`;
  });
} finally {
  conn?.destroy();
  if (container) await container.stop();
}

await check("stop() removed the container", async () => {
  await assert.rejects(runtime.container.getById(container.getId()).inspect(), /no such container/i);
});

finish("@testcontainers/toxiproxy");
