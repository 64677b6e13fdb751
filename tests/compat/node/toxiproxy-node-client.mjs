// toxiproxy-node-client, unchanged, against a Toxiproxy 2.x server (ours or real):
// every call the client offers, with the effect checked through real TCP.
//
//   TOXIPROXY_URL=http://127.0.0.1:8474 UPSTREAM=127.0.0.1:7000 node toxiproxy-node-client.mjs
//
// UPSTREAM is a line echo server. Exit 0 and a final "PASS" line when all checks hold.
import assert from "node:assert/strict";
import toxiproxyClient from "toxiproxy-node-client";
import { EchoConnection, check, connectOutcome, finish, keysOf, medianRoundTrip, required, splitAddress } from "./lib.mjs";

const { Toxiproxy, ToxiproxyError } = toxiproxyClient;
const url = required("TOXIPROXY_URL").replace(/\/$/, "");
const upstream = required("UPSTREAM");
const name = `node_client_${process.pid}`;
// Toxiproxy 2.12 marshals its proxy struct's exported Logger field as well ("Logger": {}).
const PROXY_KEYS = ["Logger", "enabled", "listen", "name", "toxics", "upstream"];
const TOXIC_KEYS = ["attributes", "name", "stream", "toxicity", "type"];
// Latency toxics are checked from below with a margin (a toxic must never be
// faster than asked); from above only against absurd values, since this
// machine may be busy. "No toxic any more" means well under what it imposed.
const LOW = 150;
const HIGH = 450;

const toxiproxy = new Toxiproxy(url);
const raw = toxiproxy.getApi(); // the client's own HTTP layer, to see the fields its classes drop

let proxy;
let host;
let port;
let conn;
let toxic;

await check("GET /version answers a JSON version (Toxiproxy >= 2.7)", async () => {
  const text = await toxiproxy.getVersion();
  assert.match(JSON.parse(text).version, /^\d+\.\d+\.\d+/);
});

await check("createProxy returns the proxy with the port the server picked", async () => {
  proxy = await toxiproxy.createProxy({ name, listen: "127.0.0.1:0", upstream });
  assert.equal(proxy.name, name);
  assert.equal(proxy.upstream, upstream);
  assert.equal(proxy.enabled, true);
  ({ host, port } = splitAddress(proxy.listen));
  assert.equal(host, "127.0.0.1");
  assert.ok(port > 0, `listen ${proxy.listen} names the real port`);
});

await check("createProxy with a taken name is refused (409)", async () => {
  await assert.rejects(toxiproxy.createProxy({ name, listen: "127.0.0.1:0", upstream }), (err) => {
    assert.ok(err instanceof ToxiproxyError);
    assert.match(err.message, /status code 409/);
    return true;
  });
});

await check("getAll lists the proxy under its name, with Toxiproxy's fields", async () => {
  const all = await toxiproxy.getAll();
  assert.ok(name in all, `${name} in ${Object.keys(all)}`);
  assert.deepEqual(all[name].toJson(), { enabled: true, listen: proxy.listen, name, upstream });
  const body = (await raw.get(`${url}/proxies`)).data;
  assert.deepEqual(keysOf(body[name]), PROXY_KEYS);
  assert.deepEqual(body[name].toxics, []);
});

await check("get returns the same proxy", async () => {
  const again = await toxiproxy.get(name);
  assert.deepEqual(again.toJson(), proxy.toJson());
});

await check("a connection through the proxy echoes", async () => {
  conn = await EchoConnection.open(host, port);
  await medianRoundTrip(conn, "plain");
});

await check("addToxic(latency) returns the toxic and delays the live connection", async () => {
  toxic = await proxy.addToxic({
    name: "lag", type: "latency", stream: "downstream", toxicity: 1, attributes: { latency: LOW, jitter: 0 },
  });
  assert.deepEqual(keysOf(toxic.toJson()), TOXIC_KEYS);
  assert.deepEqual(toxic.toJson(), {
    attributes: { latency: LOW, jitter: 0 }, name: "lag", stream: "downstream", toxicity: 1, type: "latency",
  });
  const ms = await medianRoundTrip(conn, "low");
  assert.ok(ms >= LOW * 0.9 && ms < LOW + 3000, `round trip ${ms.toFixed(1)} ms with ${LOW} ms latency`);
  return `round trip ${ms.toFixed(1)} ms`;
});

await check("a new connection gets the latency too", async () => {
  const fresh = await EchoConnection.open(host, port);
  try {
    const ms = await medianRoundTrip(fresh, "fresh");
    assert.ok(ms >= LOW * 0.9, `round trip ${ms.toFixed(1)} ms with ${LOW} ms latency`);
  } finally {
    fresh.destroy();
  }
});

await check("getToxic and GET /toxics show the toxic", async () => {
  const found = await proxy.getToxic("lag");
  assert.deepEqual(found.toJson(), toxic.toJson());
  const listed = (await raw.get(`${url}/proxies/${name}/toxics`)).data;
  assert.equal(listed.length, 1);
  assert.deepEqual(keysOf(listed[0]), TOXIC_KEYS);
  const body = (await raw.get(`${url}/proxies/${name}`)).data;
  assert.deepEqual(body.toxics.map((t) => t.name), ["lag"]);
});

await check("toxic.update (the client posts the whole toxic back) raises the latency", async () => {
  const before = await medianRoundTrip(conn, "before");
  toxic = await toxic.update({ ...toxic.toJson(), attributes: { latency: HIGH, jitter: 0 } });
  assert.deepEqual(toxic.toJson().attributes, { latency: HIGH, jitter: 0 });
  assert.equal(toxic.name, "lag");
  assert.equal(toxic.type, "latency");
  const after = await medianRoundTrip(conn, "after");
  assert.ok(after >= HIGH * 0.9, `round trip ${after.toFixed(1)} ms with ${HIGH} ms latency`);
  assert.ok(after - before >= (HIGH - LOW) / 2, `from ${before.toFixed(1)} to ${after.toFixed(1)} ms`);
  return `round trip ${before.toFixed(1)} -> ${after.toFixed(1)} ms`;
});

await check("toxic.remove ends the delay on the live connection", async () => {
  await toxic.remove();
  const ms = await medianRoundTrip(conn, "removed");
  assert.ok(ms < HIGH * 0.75, `round trip ${ms.toFixed(1)} ms after removing ${HIGH} ms latency`);
  await assert.rejects(proxy.getToxic("lag"), /status code 404/);
  return `round trip ${ms.toFixed(1)} ms`;
});

await check("proxy.update({enabled:false}) is the down fault: live connection cut, new ones refused", async () => {
  const updated = await proxy.update({ enabled: false, listen: proxy.listen, upstream });
  assert.equal(updated.enabled, false);
  assert.equal(updated.listen, proxy.listen);
  const how = await conn.waitClosed();
  assert.equal(await connectOutcome(host, port), "ECONNREFUSED");
  assert.equal((await toxiproxy.get(name)).enabled, false);
  return `live connection: ${how}; new: ECONNREFUSED`;
});

await check("proxy.update({enabled:true}) listens again on the same address", async () => {
  proxy = await proxy.update({ enabled: true, listen: proxy.listen, upstream });
  assert.equal(proxy.enabled, true);
  assert.equal(splitAddress(proxy.listen).port, port);
  conn = await EchoConnection.open(host, port);
  await medianRoundTrip(conn, "enabled");
});

await check("reset removes every toxic and re-enables every proxy", async () => {
  await proxy.addToxic({ name: "lag2", type: "latency", stream: "upstream", toxicity: 1, attributes: { latency: HIGH, jitter: 0 } });
  await proxy.update({ enabled: false, listen: proxy.listen, upstream });
  await toxiproxy.reset();
  const body = (await raw.get(`${url}/proxies/${name}`)).data;
  assert.equal(body.enabled, true);
  assert.deepEqual(body.toxics, []);
  conn = await EchoConnection.open(host, port);
  const ms = await medianRoundTrip(conn, "reset");
  assert.ok(ms < HIGH * 0.75, `round trip ${ms.toFixed(1)} ms after reset`);
});

await check("populate creates proxies and returns them by name", async () => {
  const other = `${name}_populated`;
  const made = await toxiproxy.populate([{ name: other, listen: "127.0.0.1:0", upstream }]);
  assert.deepEqual(Object.keys(made), [other]);
  const { port: otherPort } = splitAddress(made[other].listen);
  assert.ok(otherPort > 0);
  const c = await EchoConnection.open("127.0.0.1", otherPort);
  await medianRoundTrip(c, "populated", 1);
  c.destroy();
  await made[other].remove();
});

await check("proxy.remove deletes it: gone from getAll, its port refuses", async () => {
  conn.destroy();
  await proxy.remove();
  assert.ok(!(name in (await toxiproxy.getAll())));
  await assert.rejects(toxiproxy.get(name), /status code 404/);
  assert.equal(await connectOutcome(host, port), "ECONNREFUSED");
});

finish("toxiproxy-node-client");
