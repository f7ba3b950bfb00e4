/**
 * The web page in a real browser: Debian's chromium, driven by
 * playwright-core, against an in-process server, with a netcat client in
 * the same rooms. Screenshots go to a temporary folder, removed at the end
 * (or to CONFAB_SCREENSHOTS, kept).
 *
 * Run by page_test.ts as `deno test -A` in a subprocess: playwright-core
 * reads /proc/sys/fs/binfmt_misc when it loads, which Deno allows only
 * with every permission, and the test files here run with deno.json's
 * narrower ones. The sanitizers are on here too (deno.json's test config).
 *
 * @module
 */

import assert from "node:assert/strict";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { live, spawnPeer, startServer, WAIT_MS } from "../_helpers.ts";
import type { ChatServer } from "../../server/mod.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A fresh browser profile in a temporary folder, removed at the end. */
async function withBrowser(
  fn: (context: BrowserContext, shot: (page: Page, name: string) => Promise<void>) => Promise<void>,
): Promise<void> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(`this test needs chromium at ${CHROMIUM} (apt-get install chromium)`);
  }
  const profile = await Deno.makeTempDir({ prefix: "confab_profile_" });
  const keep = Deno.env.get("CONFAB_SCREENSHOTS");
  const shots = keep || await Deno.makeTempDir({ prefix: "confab_shots_" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1000, height: 640 },
  });
  try {
    await fn(context, async (page, name) => {
      await page.screenshot({ path: `${shots}/${name}.png` });
    });
  } finally {
    await context.close();
    await Deno.remove(profile, { recursive: true });
    if (!keep) await Deno.remove(shots, { recursive: true });
  }
}

/** Opens the page and joins as `alias`, waiting for the welcome. */
async function joinPage(context: BrowserContext, port: number, alias: string): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.locator("#prompt-label", { hasText: "Choose an alias" }).waitFor();
  await page.fill("#input", alias);
  await page.press("#input", "Enter");
  await page.locator("#log .notice", { hasText: `welcome, ${alias}!` }).waitFor();
  return page;
}

/** Waits for a log line containing `text`. */
async function seeLine(page: Page, text: string, kind = ".line"): Promise<void> {
  await page.locator(`#log ${kind}`, { hasText: text }).last().waitFor();
}

async function say(page: Page, line: string): Promise<void> {
  await page.fill("#input", line);
  await page.press("#input", "Enter");
}

/** A netcat client that joined as `alias`. */
async function netcat(server: ChatServer, alias: string) {
  const nc = spawnPeer("nc", ["127.0.0.1", String(server.addr.port)]);
  await nc.stdout.expect(/^\? alias: /);
  await nc.send(alias);
  await nc.stdout.expect(/-- limits: /);
  return nc;
}

Deno.test("the web page in a browser", async (t) => {
  await withBrowser(async (context, shot) => {
    await t.step("two pages and an nc client chat; a hostile line shows as text", async () => {
      await using server = startServer({ webPort: 0 });
      const port = server.webAddr!.port;
      const alice = await joinPage(context, port, "alice");
      const bob = await joinPage(context, port, "bob");
      await seeLine(alice, "bob joined", ".join");
      await using nc = await netcat(server, "carol");
      await seeLine(alice, "carol joined", ".join");
      await say(alice, "hi from alice");
      await seeLine(bob, "alice: hi from alice", ".message");
      await nc.stdout.expect(live("alice: hi from alice"));
      await seeLine(alice, "alice: hi from alice", ".message"); // shown locally
      await nc.send("hi from nc https://example.com/x");
      await seeLine(alice, "carol: hi from nc", ".message");
      const link = bob.locator("#log a", { hasText: "https://example.com/x" }).last();
      assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
      await say(bob, "/me waves");
      await seeLine(alice, "bob waves", ".action");
      await say(bob, "/msg carol psst");
      await nc.stdout.expect("(private) bob: psst");
      await nc.send("<img src=x onerror=document.title='pwned'>");
      await seeLine(alice, "<img src=x onerror=", ".message");
      assert.equal(await alice.locator("#log img").count(), 0);
      assert.notEqual(await alice.title(), "pwned");
      assert.equal(
        await alice.locator("#log .message .text").last().textContent(),
        "carol: <img src=x onerror=document.title='pwned'>",
      );
      // The same colour as the terminal client's hash.
      const { aliasColor } = await import("../../client/render.ts");
      const cls = await alice.locator("#log .message .alias", { hasText: "carol" }).last()
        .getAttribute("class");
      assert.match(cls!, new RegExp(`\\bc${aliasColor("carol")}\\b`));
      // The log is a polite live region; errors go to an alert.
      assert.equal(await alice.getAttribute("#log", "role"), "log");
      assert.equal(await alice.getAttribute("#log", "aria-live"), "polite");
      assert.equal(await alice.getAttribute("#alert", "role"), "alert");
      await shot(alice, "chat");
      await alice.close();
      await bob.close();
    });

    await t.step("a refused alias shows the server's reason; then another is taken", async () => {
      await using server = startServer({ webPort: 0 });
      const port = server.webAddr!.port;
      await using _nc = await netcat(server, "dora");
      const page = await context.newPage();
      page.setDefaultTimeout(WAIT_MS);
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.locator("#prompt-label", { hasText: "Choose an alias" }).waitFor();
      await say(page, "dora");
      await page.locator("#alert[role=alert]", { hasText: "dora is taken; choose another" })
        .waitFor();
      await shot(page, "refused");
      await say(page, "dora2");
      await seeLine(page, "welcome, dora2!", ".notice");
      assert.equal(await page.locator("#alert").isHidden(), true);
      await page.close();
    });

    await t.step(
      "rooms: the list with counts, switching by click, /join and Alt+Down",
      async () => {
        await using server = startServer({ webPort: 0 });
        const port = server.webAddr!.port;
        await using nc = await netcat(server, "erin");
        await nc.send("/join dev");
        await nc.stdout.expect(/welcome to #dev/);
        const page = await joinPage(context, port, "frank");
        await page.locator("button.room[data-room=dev]", { hasText: "1" }).waitFor();
        await page.locator("button.room[aria-current=true][data-room=lobby]").waitFor();
        await page.click("button.room[data-room=dev]");
        await page.locator("#room", { hasText: "#dev" }).waitFor();
        await nc.stdout.expect(live("--> frank joined"));
        assert.equal(await page.evaluate("document.activeElement?.id"), "input");
        await nc.send("in dev");
        await seeLine(page, "erin: in dev", ".message");
        await say(page, "/join ops");
        await page.locator("#room", { hasText: "#ops" }).waitFor();
        await page.locator("button.room[data-room=dev]").waitFor();
        await page.keyboard.press("Alt+ArrowUp");
        await page.locator("#room", { hasText: /#(dev|lobby)/ }).waitFor();
        await shot(page, "rooms");
        await page.close();
      },
    );

    await t.step("the page reconnects after the server restarts on the same port", async () => {
      const first = startServer({ webPort: 0 });
      const port = first.webAddr!.port;
      const tcpPort = first.addr.port;
      const page = await joinPage(context, port, "gwen");
      await say(page, "/join dev");
      await page.locator("#room", { hasText: "#dev" }).waitFor();
      await first.shutdown();
      await seeLine(page, "server shutting down", ".bye");
      await page.locator("#status[data-state=reconnecting]").waitFor();
      await shot(page, "reconnecting");
      await using second = startServer({ webPort: port, port: tcpPort });
      await page.locator("#status[data-state=connected]").waitFor({ timeout: 20_000 });
      await seeLine(page, "welcome to #dev, gwen!", ".notice");
      await using nc = await netcat(second, "hank");
      await nc.send("/join dev");
      await seeLine(page, "hank joined", ".join");
      await say(page, "back again");
      await nc.stdout.expect(live("gwen: back again"));
      await page.close();
    });

    await t.step("after a dropped connection, history fills the gap without repeats", async () => {
      await using server = startServer({ webPort: 0 });
      const port = server.webAddr!.port;
      const page = await context.newPage();
      page.setDefaultTimeout(WAIT_MS);
      // The page's socket goes through a proxy the test can cut.
      let blocked = false;
      let cut: (() => void) | undefined;
      await page.routeWebSocket(/\/ws$/, (ws) => {
        if (blocked) {
          ws.close();
          return;
        }
        const upstream = ws.connectToServer();
        cut = () => {
          ws.close();
          upstream.close();
        };
      });
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.locator("#prompt-label", { hasText: "Choose an alias" }).waitFor();
      await say(page, "xena");
      await seeLine(page, "welcome, xena!", ".notice");
      await using nc = await netcat(server, "yuri");
      await nc.send("said before the gap");
      await seeLine(page, "yuri: said before the gap", ".message");
      blocked = true;
      cut!();
      await nc.stdout.expect(live("<-- xena left"));
      await page.locator("#status[data-state=reconnecting]").waitFor();
      await nc.send("said during the gap");
      await nc.send("twice during the gap");
      await nc.send("twice during the gap");
      blocked = false;
      await page.locator("#status[data-state=connected]").waitFor({ timeout: 20_000 });
      await seeLine(page, "yuri: said during the gap", ".message.history");
      await seeLine(page, "yuri: twice during the gap", ".message.history");
      assert.equal(
        await page.locator("#log .message", { hasText: "said before the gap" }).count(),
        1,
      );
      // A line really said twice is shown twice; the limits are not said again.
      assert.equal(
        await page.locator("#log .message", { hasText: "twice during the gap" }).count(),
        2,
      );
      assert.equal(await page.locator("#log .notice", { hasText: "limits:" }).count(), 1);
      await nc.stdout.expect(live("--> xena joined"));
      await page.close();
    });

    await t.step("password, the 'N new' button when scrolled up, the unread marker", async () => {
      await using server = startServer({ webPort: 0, password: "sesame", rateLimit: 0 });
      const port = server.webAddr!.port;
      const page = await context.newPage();
      page.setDefaultTimeout(WAIT_MS);
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.locator("#prompt-label", { hasText: "Password" }).waitFor();
      assert.equal(await page.getAttribute("#input", "type"), "password");
      await say(page, "wrong");
      await page.locator("#alert[role=alert]", { hasText: "wrong password" }).waitFor();
      await say(page, "sesame");
      await page.locator("#prompt-label", { hasText: "Choose an alias" }).waitFor();
      await say(page, "vera");
      await seeLine(page, "welcome, vera!", ".notice");
      const nc = spawnPeer("nc", ["127.0.0.1", String(server.addr.port)]);
      await using _nc = nc;
      await nc.stdout.expect(/^\? password: /);
      await nc.send("sesame");
      await nc.stdout.expect(/^\? alias: /);
      await nc.send("walt");
      await nc.stdout.expect(/-- limits: /);
      for (let i = 0; i < 60; i++) await nc.send(`filler ${i}`);
      await seeLine(page, "walt: filler 59", ".message");
      await page.evaluate("document.getElementById('log').scrollTop = 0");
      for (let i = 0; i < 3; i++) await nc.send(`while away ${i}`);
      await page.locator("#new-below", { hasText: "3 new" }).waitFor();
      await shot(page, "new-below");
      await page.click("#new-below");
      await page.locator("#new-below").waitFor({ state: "hidden" });
      assert.ok(
        await page.evaluate(
          "(() => { const l = document.getElementById('log'); " +
            "return l.scrollHeight - l.scrollTop - l.clientHeight < 8; })()",
        ),
      );
      // The tab is hidden, a line comes, the tab is back: a marker before it.
      await page.evaluate(
        "Object.defineProperty(document, 'visibilityState', " +
          "{ value: 'hidden', configurable: true }); " +
          "document.dispatchEvent(new Event('visibilitychange'))",
      );
      await nc.send("said while hidden");
      await seeLine(page, "walt: said while hidden", ".message");
      const afterMarker = await page.locator("#log .unread + .line").textContent();
      assert.match(afterMarker!, /walt: said while hidden/);
      await page.close();
    });

    await t.step(
      "after a lost connection the page waits for the server to let go of its alias",
      async () => {
        await using server = startServer({ webPort: 0 });
        const port = server.webAddr!.port;
        const page = await context.newPage();
        page.setDefaultTimeout(WAIT_MS);
        // The page's socket goes through a proxy: the test cuts the page's side
        // only, so the server keeps the old session until told otherwise.
        const upstreams: { close(): Promise<void> }[] = [];
        const pageSides: { close(): Promise<void> }[] = [];
        await page.routeWebSocket(/\/ws$/, (ws) => {
          const upstream = ws.connectToServer();
          // A close on one side is not passed to the other.
          ws.onClose(() => {});
          upstream.onClose(() => ws.close());
          upstreams.push(upstream);
          pageSides.push(ws);
        });
        await page.goto(`http://127.0.0.1:${port}/`);
        await page.locator("#prompt-label", { hasText: "Choose an alias" }).waitFor();
        await say(page, "zoe");
        await seeLine(page, "welcome, zoe!", ".notice");
        await say(page, "/join dev");
        await seeLine(page, "welcome to #dev, zoe!", ".notice");
        await pageSides[0]!.close();
        await seeLine(page, "zoe is taken; choose another", ".error");
        assert.equal(await page.locator("#alert").isHidden(), true);
        await upstreams[0]!.close();
        await page.locator("#status[data-state=connected]").waitFor({ timeout: 20_000 });
        await page.locator("#log .notice", { hasText: "welcome to #dev, zoe!" }).nth(1).waitFor();
        await using nc = await netcat(server, "abe");
        await nc.send("/join dev");
        await seeLine(page, "abe joined", ".join");
        await page.close();
      },
    );

    await t.step("pacing, refused lines, errors as alerts, the marker, idling out", async () => {
      await using server = startServer({
        webPort: 0,
        rateLimit: 5,
        rateBurst: 3,
        maxLineBytes: 50,
        idleTimeoutMs: 3000,
      });
      const port = server.webAddr!.port;
      const page = await joinPage(context, port, "bea");
      await using nc = await netcat(server, "cy");
      await seeLine(page, "cy joined", ".join");
      assert.equal(await page.getAttribute("#input", "maxlength"), "50");
      // Typed faster than --rate: paced, so none is held up by the server.
      for (let i = 0; i < 8; i++) await say(page, `quick ${i}`);
      for (let i = 0; i < 8; i++) await nc.stdout.expect(live(`bea: quick ${i}`));
      assert.equal(await page.locator("#log .notice", { hasText: "slow down" }).count(), 0);
      // Too long in bytes, though not in characters: kept in the box, not sent.
      await say(page, "é".repeat(30));
      await page.locator("#alert", { hasText: "Line too long: 60 bytes, at most 50" }).waitFor();
      assert.equal(await page.inputValue("#input"), "é".repeat(30));
      assert.equal(await page.locator("#log .message", { hasText: "éé" }).count(), 0);
      await page.fill("#input", "");
      // An error after joining is an alert, until the next line is sent.
      await say(page, "/msg nobody hi");
      await page.locator("#alert[role=alert]", { hasText: "nobody" }).waitFor();
      await say(page, "fine now");
      await nc.stdout.expect(live("bea: fine now"));
      assert.equal(await page.locator("#alert").isHidden(), true);
      // Hidden and back with nothing said meanwhile: no marker on the next line.
      const visibility = (state: string) =>
        page.evaluate(
          "Object.defineProperty(document, 'visibilityState', " +
            `{ value: '${state}', configurable: true }); ` +
            "document.dispatchEvent(new Event('visibilitychange'))",
        );
      await visibility("hidden");
      await visibility("visible");
      await nc.send("seen while watching");
      await seeLine(page, "cy: seen while watching", ".message");
      assert.equal(await page.locator("#log .unread").count(), 0);
      // Idle: the server lets the page go, and it does not come back on its own.
      await seeLine(page, "idle for too long", ".bye");
      await page.locator("#status[data-state=closed]").waitFor();
      await page.locator("#prompt-label", { hasText: "Press Enter to connect again" }).waitFor();
      await nc.stdout.expect(live("<-- bea left (idle)"));
      await page.press("#input", "Enter");
      await page.locator("#log .notice", { hasText: "welcome, bea!" }).nth(1).waitFor();
      await page.close();
    });

    await t.step("a phone-sized screen, used from the keyboard only", async () => {
      await using server = startServer({ webPort: 0 });
      const port = server.webAddr!.port;
      await using nc = await netcat(server, "ivan");
      const page = await context.newPage();
      page.setDefaultTimeout(WAIT_MS);
      await page.setViewportSize({ width: 390, height: 740 });
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.locator("#prompt-label", { hasText: "Choose an alias" }).waitFor();
      // The input has focus from the start: typing is enough.
      assert.equal(await page.evaluate("document.activeElement?.id"), "input");
      await page.keyboard.type("judy");
      await page.keyboard.press("Enter");
      await seeLine(page, "welcome, judy!", ".notice");
      await page.keyboard.type("hello iv");
      await page.keyboard.press("Tab");
      assert.equal(await page.inputValue("#input"), "hello ivan ");
      await page.keyboard.press("Enter");
      await nc.stdout.expect(live("judy: hello ivan "));
      await page.keyboard.type("/jo");
      await page.keyboard.press("Tab");
      assert.equal(await page.inputValue("#input"), "/join ");
      await page.keyboard.type("dev");
      await page.keyboard.press("Enter");
      await page.locator("#room", { hasText: "#dev" }).waitFor();
      await page.keyboard.press("ArrowUp");
      assert.equal(await page.inputValue("#input"), "/join dev");
      await page.keyboard.press("ArrowUp");
      assert.equal(await page.inputValue("#input"), "hello ivan ");
      await page.keyboard.press("ArrowDown");
      await page.keyboard.press("ArrowDown");
      assert.equal(await page.inputValue("#input"), "");
      await page.keyboard.press("Alt+ArrowDown");
      await page.locator("#room", { hasText: "#lobby" }).waitFor();
      await nc.stdout.expect(live("--> judy joined"));
      // Everything fits the width, and the input is on screen.
      const fits = await page.evaluate("document.documentElement.scrollWidth <= innerWidth");
      assert.ok(fits, "no sideways scrolling");
      const box = await page.locator("#input").boundingBox();
      assert.ok(box !== null && box.y + box.height <= 740 && box.width > 200, JSON.stringify(box));
      await shot(page, "phone");
      // Light or dark, as the system says.
      const background = () =>
        page.evaluate("getComputedStyle(document.body).backgroundColor") as Promise<string>;
      const light = await background();
      await page.emulateMedia({ colorScheme: "dark" });
      const dark = await background();
      const sum = (rgb: string) =>
        rgb.match(/\d+/g)!.slice(0, 3).map(Number).reduce((a, b) => a + b);
      assert.ok(sum(light) > 600 && sum(dark) < 150, `${light} / ${dark}`);
      await shot(page, "phone-dark");
      await page.close();
    });
  });
});
