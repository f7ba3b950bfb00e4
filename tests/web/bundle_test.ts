import assert from "node:assert/strict";
import { buildBundleModule, BUNDLE_PATH } from "../../web/build.ts";
import { APP_JS } from "../../server/web/_app_bundle.ts";

Deno.test("the committed page bundle is what web/app.ts builds to now (deno task bundle)", async () => {
  const committed = await Deno.readTextFile(new URL(`../../${BUNDLE_PATH}`, import.meta.url));
  const fresh = await buildBundleModule();
  assert.ok(committed === fresh, "server/web/_app_bundle.ts is stale: run deno task bundle");
});

Deno.test("the page bundle reads wire lines with the protocol module, and holds no Deno API", () => {
  assert.match(APP_JS, /^\/\/ protocol\/wire\.ts$/m);
  assert.match(APP_JS, /function parseServerLine\(/);
  assert.doesNotMatch(APP_JS, /\bDeno\./);
  assert.doesNotMatch(APP_JS, /innerHTML|insertAdjacentHTML|document\.write/);
});
