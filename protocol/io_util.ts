/**
 * Small I/O helpers shared by the server, the client and the command line.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Writes all of `text` to a synchronous writer such as `Deno.stderr`
 * (`writeSync` may write only part of what it is given).
 *
 * @example Usage
 * ```ts ignore
 * writeAllSync(Deno.stderr, "confab: something happened\n");
 * ```
 */
export function writeAllSync(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
}

/**
 * Closes a connection or listener that may already be closed (reading a
 * `Deno.Conn` to its end closes it): only `BadResource` is swallowed.
 */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}

/** `host:port`, with an IPv6 host in brackets. */
export function formatAddress(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}
