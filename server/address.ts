/**
 * IP addresses and CIDR ranges, for the list of addresses the per-address
 * connection cap does not apply to.
 *
 * @module
 */

/** Loopback, exempt by default: one address there is many people (a proxy, a load test). */
export const LOOPBACK_RANGES: readonly string[] = ["127.0.0.0/8", "::1"];

/** A parsed address: 4 bytes for IPv4, 16 for IPv6. */
type Bytes = readonly number[];

function parseIpv4(text: string): Bytes | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    bytes.push(Number(part));
  }
  return bytes;
}

function parseIpv6(text: string): Bytes | undefined {
  // An IPv4 tail (::ffff:192.0.2.1) is two groups written the other way.
  let tail: Bytes = [];
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".", lastColon)) {
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = v4;
    text = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string) => (half === "" ? [] : half.split(":"));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  const bytes: number[] = [];
  for (const group of all) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
    const n = parseInt(group, 16);
    bytes.push(n >> 8, n & 0xff);
  }
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/**
 * Parses an IPv4 or IPv6 address; an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`, as a dual-stack listener reports IPv4 peers) counts
 * as the IPv4 address.
 */
function parseIp(text: string): Bytes | undefined {
  const bytes = text.includes(":") ? parseIpv6(text.replace(/^\[|\]$/g, "")) : parseIpv4(text);
  if (
    bytes?.length === 16 && bytes.slice(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff && bytes[11] === 0xff
  ) {
    return bytes.slice(12);
  }
  return bytes;
}

/** One CIDR range (or a single address, which is a range of one). */
interface Range {
  readonly bytes: Bytes;
  readonly bits: number;
}

/**
 * Parses `ADDRESS` or `ADDRESS/BITS`. Throws a `TypeError` saying what is
 * wrong with it.
 */
function parseRange(text: string): Range {
  const [address = "", bitsText, extra] = text.trim().split("/");
  const bytes = extra === undefined ? parseIp(address) : undefined;
  if (bytes === undefined) {
    throw new TypeError(`"${text}" is not an IP address or CIDR range (like 10.0.0.0/8 or ::1)`);
  }
  const max = bytes.length * 8;
  const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!(bits >= 0 && bits <= max)) {
    if (max === 32 && address.includes(":")) {
      // IPv4 inside IPv6 is matched as IPv4, so its prefix counts IPv4's bits.
      const v4 = bytes.join(".");
      const as = bits >= 96 && bits <= 128 ? `${v4}/${bits - 96}` : `${v4}/0 to ${v4}/32`;
      throw new TypeError(
        `"${text}" is IPv4 written inside IPv6, which is matched as IPv4: write it as ${as}`,
      );
    }
    throw new TypeError(`"${text}" has a prefix length that is not between 0 and ${max}`);
  }
  return { bytes, bits };
}

function inRange(address: Bytes, range: Range): boolean {
  if (address.length !== range.bytes.length) return false;
  let bits = range.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((address[i]! & mask) !== (range.bytes[i]! & mask)) return false;
  }
  return true;
}

/**
 * A set of addresses and CIDR ranges that can say whether an address is in
 * it.
 *
 * @example Usage
 * ```ts
 * import { AddressSet } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * const exempt = new AddressSet(["127.0.0.0/8", "::1", "10.1.0.0/16"]);
 * assert.ok(exempt.has("127.0.0.53"));
 * assert.ok(exempt.has("::ffff:10.1.2.3"));
 * assert.ok(!exempt.has("10.2.0.1"));
 * ```
 */
export class AddressSet {
  readonly #ranges: Range[];

  /** Parses every entry; throws a `TypeError` naming the first bad one. */
  constructor(entries: Iterable<string>) {
    this.#ranges = [...entries].map(parseRange);
  }

  /** Whether `address` (as a socket reports it) is in one of the ranges. */
  has(address: string): boolean {
    if (this.#ranges.length === 0) return false;
    const bytes = parseIp(address);
    return bytes !== undefined && this.#ranges.some((range) => inRange(bytes, range));
  }
}

/**
 * Whether `text` is an IPv4 or IPv6 address (an IPv6 one may be in
 * brackets, as in a URL's host).
 *
 * @example Usage
 * ```ts
 * import { isIpAddress } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isIpAddress("203.0.113.7"));
 * assert.ok(isIpAddress("[::1]"));
 * assert.ok(!isIpAddress("example.com"));
 * ```
 */
export function isIpAddress(text: string): boolean {
  return parseIp(text) !== undefined;
}
