// deno-lint-ignore-file no-console
/**
 * The least a Deno line broadcaster can do: a reference peer for the shared
 * chat-server harness, to tell what confab costs from what the runtime
 * costs. It speaks the harness's line protocol (`alias?` on connect, the
 * first line is the alias, every later line goes to every other client as
 * `alias: line`) and writes in rounds, one write per client carrying all
 * that is new, as confab does, with nothing else: no limits, no commands,
 * no history, no steps within a round, no guard against a client that
 * stops reading (one such client holds every round).
 *
 * ```sh
 * deno run --allow-net bench/floor_broadcast.ts PORT
 * ```
 *
 * @module
 */

interface Client {
  readonly conn: Deno.Conn;
}

const encoder = new TextEncoder();
const clients = new Set<Client>();
/** Lines since the last round, with who sent each. */
let batch: { from: Client; bytes: Uint8Array }[] = [];
/** Wakes the round loop when it waits for a line. */
let wake: (() => void) | undefined;

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Writes all of `data` to `client`; a failed write drops it. */
function writeAll(client: Client, data: Uint8Array): Promise<void> {
  // No async frame for a write that goes out whole, as most do.
  return client.conn.write(data).then(
    (n) => n < data.length ? writeAll(client, data.subarray(n)) : undefined,
    () => void clients.delete(client),
  );
}

/**
 * Write rounds, each one write per client of everything since the last
 * (its own lines left out); the next starts once every write of this one
 * is done, so rounds clock themselves, and sockets are read in between.
 */
async function rounds(): Promise<never> {
  while (true) {
    if (batch.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
    const lines = batch;
    batch = [];
    const all = concat(lines.map((line) => line.bytes));
    const senders = new Set(lines.map((line) => line.from));
    const writes: Promise<void>[] = [];
    for (const client of clients) {
      const data = senders.has(client)
        ? concat(lines.filter((line) => line.from !== client).map((line) => line.bytes))
        : all;
      if (data.length > 0) writes.push(writeAll(client, data));
    }
    await Promise.all(writes);
  }
}

async function serveClient(conn: Deno.Conn): Promise<void> {
  const client: Client = { conn };
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(16 * 1024);
  let alias: string | undefined;
  let text = "";
  try {
    await conn.write(encoder.encode("alias?\n"));
    for (let n; (n = await conn.read(buffer)) !== null;) {
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
      let end;
      while ((end = text.indexOf("\n")) >= 0) {
        const line = text.slice(0, end);
        text = text.slice(end + 1);
        if (alias === undefined) {
          alias = line;
          clients.add(client);
        } else {
          batch.push({ from: client, bytes: encoder.encode(`${alias}: ${line}\n`) });
          wake?.();
        }
      }
    }
  } catch {
    // Reset by the peer: it just leaves.
  }
  clients.delete(client);
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

const port = Number(Deno.args[0]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error("usage: floor_broadcast.ts PORT");
  Deno.exit(2);
}
void rounds();
const listener = Deno.listen({ hostname: "127.0.0.1", port });
while (true) {
  let conn: Deno.TcpConn;
  try {
    conn = await listener.accept();
  } catch (error) {
    // Out of file descriptors, or a connection reset before it was taken:
    // wait a moment and go on, as a server must.
    console.error(`accept: ${error instanceof Error ? error.message : error}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
    continue;
  }
  try {
    conn.setNoDelay(true);
  } catch {
    // Already gone: its first read says so.
  }
  void serveClient(conn);
}
