// Shared helpers of the Node compatibility scripts: real TCP connections,
// round trips timed on the client side, and checks that say what they checked.
import net from "node:net";
import { performance } from "node:perf_hooks";

let passed = 0;

/** Run one named check; a failure ends the script with the check's name. A returned string is shown. */
export async function check(name, body) {
  let detail;
  try {
    detail = await body();
  } catch (err) {
    console.error(`FAIL ${name}: ${err?.stack ?? err}`);
    process.exit(1);
  }
  passed += 1;
  console.log(detail ? `ok ${name} (${detail})` : `ok ${name}`);
}

export function finish(script) {
  console.log(`PASS ${script}: ${passed} checks`);
}

export function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`FAIL setup: environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
}

/** "host:port" (IPv6 in brackets allowed) -> { host, port }. */
export function splitAddress(address) {
  const at = address.lastIndexOf(":");
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(address.slice(at + 1)) };
}

/** A client connection to an echo server: send a line, time until it comes back. */
export class EchoConnection {
  static open(host, port, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve(new EchoConnection(socket));
      });
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  constructor(socket) {
    this.socket = socket;
    this.buffer = "";
    this.waiters = [];
    this.closed = null; // "end" | error code, once the peer closed or reset
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => {
      this.buffer += chunk;
      this.wake();
    });
    socket.on("end", () => this.close("end"));
    socket.on("error", (err) => this.close(err.code ?? String(err)));
    socket.on("close", () => this.close("close"));
  }

  close(reason) {
    if (this.closed === null) this.closed = reason;
    this.wake();
  }

  wake() {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  changed(timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no data or close within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Milliseconds from sending `payload` until the echo has fully come back. */
  async roundTrip(payload, timeoutMs = 10000) {
    const line = `${payload}\n`;
    const started = performance.now();
    this.socket.write(line);
    while (!this.buffer.includes(line)) {
      if (this.closed !== null) throw new Error(`connection closed (${this.closed}) before the echo of ${payload}`);
      await this.changed(timeoutMs);
    }
    this.buffer = this.buffer.slice(this.buffer.indexOf(line) + line.length);
    return performance.now() - started;
  }

  /** Resolves with how the peer ended the connection ("end", "ECONNRESET", ...). */
  async waitClosed(timeoutMs = 5000) {
    while (this.closed === null) await this.changed(timeoutMs);
    return this.closed;
  }

  destroy() {
    this.socket.destroy();
  }
}

/** Median round trip of `count` fresh lines on one connection. */
export async function medianRoundTrip(conn, label, count = 3) {
  const times = [];
  for (let i = 0; i < count; i += 1) times.push(await conn.roundTrip(`${label}-${i}`));
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** How a connection attempt ends: "ECONNREFUSED", or "accepted" if the port still takes it. */
export async function connectOutcome(host, port) {
  try {
    const conn = await EchoConnection.open(host, port);
    conn.destroy();
    return "accepted";
  } catch (err) {
    if (err.code) return err.code;
    throw err;
  }
}

/** Exactly these keys, so a field the server adds, drops or renames is seen. */
export function keysOf(object) {
  return Object.keys(object).sort();
}
