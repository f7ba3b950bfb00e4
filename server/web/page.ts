/**
 * The web page's HTML and styles, as strings, so the one program carries
 * them (nothing is read from disk or a CDN at run time). Its script is
 * bundled from web/app.ts into `_app_bundle.ts`.
 *
 * @module
 */

/** The page: a room list, the message log, one input. */
export const APP_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>confab</title>
<link rel="stylesheet" href="/app.css">
<script type="module" src="/app.js"></script>
</head>
<body data-phase="connecting">
<header>
  <h1>confab</h1>
  <span id="room" aria-label="current room"></span>
  <span id="status" role="status" data-state="connecting">connecting…</span>
</header>
<main>
  <nav aria-labelledby="rooms-title">
    <h2 id="rooms-title">Rooms</h2>
    <ul id="room-list"></ul>
    <p class="keys">Alt+↑/↓ switch rooms</p>
  </nav>
  <section aria-label="chat">
    <div id="log" role="log" aria-live="polite" aria-relevant="additions" aria-label="messages" tabindex="0"></div>
    <button id="new-below" type="button" hidden>0 new</button>
    <div id="alert" role="alert" hidden></div>
    <form id="form" autocomplete="off">
      <label id="prompt-label" for="input">Connecting</label>
      <div class="row">
        <input id="input" name="line" spellcheck="false" enterkeyhint="send" aria-describedby="hint">
        <button type="submit">Send</button>
      </div>
      <div id="hint" aria-live="polite"></div>
    </form>
  </section>
</main>
</body>
</html>
`;

/**
 * The styles: light or dark from `prefers-color-scheme`, alias colours by
 * the same twelve ANSI codes the terminal client picks from
 * (`aliasColor` in client/render.ts), one column on a phone.
 */
export const APP_CSS = `:root {
  color-scheme: light dark;
  --bg: #fdfdfc; --fg: #1d1d1f; --dim: #6b6b70; --line: #e3e3e6; --panel: #f3f3f5;
  --accent: #0b57d0; --error: #b3261e; --private: #7a3fb0; --mention: #fff3c4;
  --c31: #c0392b; --c32: #1e7e34; --c33: #9a6700; --c34: #1f5fbf; --c35: #a3359a; --c36: #0f7b83;
  --c91: #e0482f; --c92: #2f9e44; --c93: #b7791f; --c94: #3b7ddd; --c95: #c2409f; --c96: #1897a0;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #151518; --fg: #e8e8ea; --dim: #9a9aa2; --line: #2c2c31; --panel: #1d1d21;
    --accent: #8ab4f8; --error: #f28b82; --private: #d7aefb; --mention: #4a3f12;
    --c31: #ff7b72; --c32: #7ee787; --c33: #e3b341; --c34: #79c0ff; --c35: #f08ee6; --c36: #56d4dd;
    --c91: #ffa198; --c92: #a5f3a5; --c93: #f2cc60; --c94: #a5d6ff; --c95: #f7b0ef; --c96: #8eeef2;
  }
}
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body {
  display: flex; flex-direction: column; background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
}
header {
  display: flex; align-items: baseline; gap: .75rem; padding: .5rem .9rem;
  border-bottom: 1px solid var(--line); background: var(--panel);
}
h1 { font-size: 1.05rem; margin: 0; }
#room { font-weight: 600; }
#status { margin-left: auto; color: var(--dim); font-size: .9rem; }
#status[data-state="reconnecting"], #status[data-state="closed"] { color: var(--error); }
main { flex: 1; display: flex; min-height: 0; }
nav { width: 12rem; border-right: 1px solid var(--line); padding: .5rem; overflow-y: auto; background: var(--panel); }
nav h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .05em; color: var(--dim); margin: .25rem .4rem; }
nav ul { list-style: none; margin: 0; padding: 0; }
button.room {
  display: flex; width: 100%; justify-content: space-between; gap: .5rem; padding: .3rem .5rem;
  border: 0; border-radius: .35rem; background: none; color: inherit; font: inherit; text-align: left; cursor: pointer;
}
button.room:hover { background: var(--line); }
button.room[aria-current="true"] { background: var(--accent); color: var(--bg); font-weight: 600; }
.count { color: inherit; opacity: .75; font-variant-numeric: tabular-nums; }
.keys { color: var(--dim); font-size: .8rem; margin: .75rem .4rem; }
section { flex: 1; display: flex; flex-direction: column; min-width: 0; position: relative; }
#log { flex: 1; overflow-y: auto; padding: .5rem .9rem; overflow-wrap: anywhere; white-space: pre-wrap; }
.line { padding: .05rem 0; }
.line time { color: var(--dim); font-size: .85em; font-variant-numeric: tabular-nums; }
.line.history { opacity: .75; }
.alias { font-weight: 600; }
.alias.me { text-decoration: underline; text-underline-offset: .15em; }
.c31 { color: var(--c31); } .c32 { color: var(--c32); } .c33 { color: var(--c33); }
.c34 { color: var(--c34); } .c35 { color: var(--c35); } .c36 { color: var(--c36); }
.c91 { color: var(--c91); } .c92 { color: var(--c92); } .c93 { color: var(--c93); }
.c94 { color: var(--c94); } .c95 { color: var(--c95); } .c96 { color: var(--c96); }
.join, .leave, .nick { color: var(--dim); font-size: .92em; }
.notice, .prompt, .unknown { color: var(--dim); }
.action .text { font-style: italic; }
.private .text { color: var(--private); }
.error, .bye { color: var(--error); }
.mention { background: var(--mention); border-radius: .25rem; }
.unread {
  display: flex; align-items: center; gap: .5rem; color: var(--error); font-size: .8rem; margin: .3rem 0;
}
.unread::before, .unread::after { content: ""; flex: 1; border-top: 1px solid var(--error); }
a { color: var(--accent); }
#new-below {
  position: absolute; right: 1rem; bottom: 5.5rem; padding: .3rem .8rem; border-radius: 1rem;
  border: 1px solid var(--line); background: var(--accent); color: var(--bg); font: inherit; cursor: pointer;
}
#alert { margin: 0 .9rem; padding: .4rem .6rem; border-radius: .35rem; background: var(--error); color: var(--bg); }
#alert[hidden], #new-below[hidden] { display: none; }
form { padding: .5rem .9rem .7rem; border-top: 1px solid var(--line); }
label { display: block; font-size: .8rem; color: var(--dim); margin-bottom: .2rem; }
.row { display: flex; gap: .5rem; }
#input {
  flex: 1; min-width: 0; padding: .5rem .6rem; font: inherit; color: inherit; background: var(--bg);
  border: 1px solid var(--dim); border-radius: .35rem;
}
form button { padding: .5rem .9rem; font: inherit; border-radius: .35rem; border: 1px solid var(--accent); background: var(--accent); color: var(--bg); }
#hint { min-height: 1.1em; font-size: .8rem; color: var(--dim); margin-top: .2rem; white-space: pre; overflow: hidden; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
@media (max-width: 640px) {
  main { flex-direction: column; }
  nav { width: auto; border-right: 0; border-bottom: 1px solid var(--line); padding: .3rem .5rem; display: flex; align-items: center; gap: .5rem; }
  nav h2, .keys { display: none; }
  nav ul { display: flex; gap: .25rem; overflow-x: auto; }
  button.room { width: auto; white-space: nowrap; }
  #log { padding: .4rem .6rem; }
  form { padding: .4rem .6rem .6rem; }
  #new-below { bottom: 5rem; }
}
`;
