/**
 * A real redis-server for tests: on a free loopback port, persistence off,
 * started and stopped by the test.
 *
 * @module
 */

import { LineSource, WAIT_MS } from "./_helpers.ts";

/** A running redis-server. */
export interface RedisServer extends AsyncDisposable {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** `redis://127.0.0.1:PORT` (`rediss://` with TLS). */
  readonly url: string;
  /** Kills it (SIGKILL, so it saves nothing) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
}

/** A loopback port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function spawn(port: number, extra: string[]): { child: Deno.ChildProcess; out: LineSource } {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
        ...extra,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("this test needs redis-server, which is not installed");
    }
    throw error;
  }
  return { child, out: new LineSource(child.stdout) };
}

/** The test-only CA that signed the certificate a TLS redis-server presents. */
export const TEST_CA = new URL("./fixtures/test_only_ca.pem", import.meta.url).pathname;

/** Options for {@linkcode startRedis}. */
export interface StartRedisOptions {
  /** More arguments, such as `--requirepass`. */
  args?: string[];
  /** Speak only TLS, with the test-only certificate (trust {@linkcode TEST_CA}). */
  tls?: boolean;
}

/** Starts redis-server on a free port and waits until it accepts connections. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const port = freePort();
  const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
  const extra = [
    ...(options.tls
      ? [
        "--port",
        "0",
        "--tls-port",
        String(port),
        "--tls-cert-file",
        fixture("test_only_server_cert.pem"),
        "--tls-key-file",
        fixture("test_only_server_key.pem"),
        "--tls-ca-cert-file",
        TEST_CA,
        "--tls-auth-clients",
        "no",
      ]
      : []),
    ...(options.args ?? []),
  ];
  let current = spawn(port, extra);
  const ready = async () => {
    try {
      await current.out.expect("Ready to accept connections", WAIT_MS * 2);
    } catch (error) {
      await stop();
      throw error;
    }
  };
  const stop = async () => {
    try {
      current.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await current.child.status;
    await current.out.rest(WAIT_MS).catch(() => {});
  };
  await ready();
  return {
    port,
    url: `${options.tls ? "rediss" : "redis"}://127.0.0.1:${port}`,
    kill: stop,
    async restart() {
      current = spawn(port, extra);
      await ready();
    },
    [Symbol.asyncDispose]: stop,
  };
}

/** A TCP proxy in front of Redis whose link can be cut and restored, as a partition. */
export interface RedisProxy extends AsyncDisposable {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** Closes every proxied connection and turns new ones away until {@linkcode RedisProxy.restore}. */
  cut(): void;
  /** Lets connections through again. */
  restore(): void;
}

/** Starts a proxy on a free loopback port to `targetPort`. */
export function startProxy(targetPort: number): RedisProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let cut = false;
  const close = (conn: Deno.Conn) => {
    open.delete(conn);
    try {
      conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  };
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) break;
        let offset = 0;
        while (offset < n) offset += await to.write(buffer.subarray(offset, n));
      }
    } catch {
      // Either side closed: the pair ends.
    }
    close(from);
    close(to);
  };
  const track = (task: Promise<void>) => {
    tasks.add(task);
    task.finally(() => tasks.delete(task));
  };
  const accepting = (async () => {
    for await (const client of listener) {
      if (cut) {
        client.close();
        continue;
      }
      let server: Deno.Conn;
      try {
        server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      } catch {
        client.close();
        continue;
      }
      open.add(client);
      open.add(server);
      track(pipe(client, server));
      track(pipe(server, client));
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    cut() {
      cut = true;
      for (const conn of [...open]) close(conn);
    },
    restore() {
      cut = false;
    },
    async [Symbol.asyncDispose]() {
      cut = true;
      listener.close();
      for (const conn of [...open]) close(conn);
      await accepting;
      await Promise.all([...tasks]);
    },
  };
}
