/**
 * Several `confab serve` instances as one server, through Redis: the
 * connection ({@linkcode RedisLink}) and the shared registry
 * ({@linkcode RedisRegistry}).
 *
 * @example Usage
 * ```ts ignore
 * import { RedisLink, RedisRegistry } from "./mod.ts";
 * import { serve } from "../mod.ts";
 *
 * const link = await RedisLink.connect({ url: "redis://127.0.0.1:6379", log: () => {} });
 * let registry: RedisRegistry | undefined;
 * const server = serve({ registry: (s) => (registry = new RedisRegistry(link, "main", s)) });
 * await registry!.start();
 * ```
 *
 * @module
 */

export { redactUrl, RedisLink, type RedisLinkOptions } from "./link.ts";
export { RedisRegistry } from "./registry.ts";
