import { createHash } from 'node:crypto';

/** The site's whole stylesheet, inlined in every page: no static files, no build step. */
export const STYLE = `
:root {
  --ink: #1f2430; --muted: #5b6475; --line: #e3e6ee; --paper: #ffffff; --page: #f4f6fb;
  --accent: #4f46e5; --accent-dark: #3f37c9; --accent-soft: #eef0ff;
  --ok: #0f7b4b; --ok-soft: #e6f6ee; --bad: #b42318; --bad-soft: #fdecea; --info-soft: #eaf2ff; --info: #1d4ed8;
  --radius: 12px; --shadow: 0 1px 2px rgba(16, 24, 40, .06), 0 6px 24px rgba(16, 24, 40, .06);
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--page); color: var(--ink);
  /* A word wider than its line (a long username, an email) breaks rather than pushing the page sideways. */
  overflow-wrap: break-word;
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Liberation Sans", "DejaVu Sans", sans-serif;
}
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code { font: .9em/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; background: #f1f3f8; padding: .1em .35em; border-radius: 5px; overflow-wrap: anywhere; }
.topbar { background: var(--paper); border-bottom: 1px solid var(--line); }
.topbar .inner { max-width: 960px; margin: 0 auto; padding: .75rem 1.25rem; display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem; }
.brand { font-weight: 700; color: var(--ink); letter-spacing: -.01em; display: flex; align-items: center; gap: .5rem; }
.brand:hover { text-decoration: none; }
.brand .logo { width: 28px; height: 28px; border-radius: 8px; background: linear-gradient(135deg, #6366f1, #8b5cf6); display: inline-grid; place-items: center; color: #fff; font-size: .85rem; }
.topbar nav { display: flex; gap: 1rem; flex: 1; }
.topbar nav a { color: var(--muted); font-weight: 500; }
.topbar nav a[aria-current="page"] { color: var(--ink); }
.brand .logo.provider { background: linear-gradient(135deg, #0ea5e9, #14b8a6); }
.account { display: flex; align-items: center; gap: .75rem; margin-left: auto; min-width: 0; color: var(--muted); }
/* A long username (an email from an identity provider) is cut short here; the whole name is its title. */
.account .who { display: flex; flex-wrap: wrap; align-items: baseline; column-gap: .3em; min-width: 0; }
.account strong { color: var(--ink); max-width: 14rem; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.account form { flex: none; }
.account .button { padding: .35rem .9rem; font-size: .9rem; }
main { max-width: 960px; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.9rem; line-height: 1.2; letter-spacing: -.02em; margin: 0 0 .5rem; }
h2 { font-size: 1.15rem; margin: 0 0 .75rem; }
.lead { color: var(--muted); font-size: 1.05rem; margin: 0 0 1.5rem; }
.card { background: var(--paper); border: 1px solid var(--line); border-radius: var(--radius); box-shadow: var(--shadow); padding: 1.5rem; }
.grid { display: grid; gap: 1.25rem; grid-template-columns: repeat(auto-fit, minmax(min(280px, 100%), 1fr)); align-items: start; }
.narrow { max-width: 520px; }
.spaced { margin-top: 1.25rem; }
.split { display: grid; gap: 1.5rem; grid-template-columns: minmax(300px, 400px) minmax(260px, 1fr); align-items: start; }
.flashes { list-style: none; margin: 0 0 1.5rem; padding: 0; display: grid; gap: .5rem; }
.flash, .alert { border-radius: 10px; padding: .7rem 1rem; border: 1px solid transparent; font-weight: 500; }
.flash.success { background: var(--ok-soft); color: var(--ok); border-color: #b7e4cc; }
.flash.info { background: var(--info-soft); color: var(--info); border-color: #c7dafc; }
.flash.warning { background: #fff7e6; color: #8a5300; border-color: #f5d9a6; }
.flash.error, .alert { background: var(--bad-soft); color: var(--bad); border-color: #f5c2bd; }
.alert, p.flash { margin: 0 0 1rem; }
form.stack { display: grid; gap: 1rem; }
label { display: block; font-weight: 600; font-size: .92rem; margin-bottom: .35rem; }
input[type="text"], input[type="password"] {
  width: 100%; padding: .65rem .8rem; font: inherit; color: var(--ink); background: #fff;
  border: 1px solid #cfd4e0; border-radius: 8px; transition: border-color .15s, box-shadow .15s;
}
input[aria-invalid="true"] { border-color: var(--bad); }
input:focus { outline: none; border-color: var(--accent); box-shadow: 0 0 0 3px rgba(79, 70, 229, .18); }
.field-error { color: var(--bad); font-size: .88rem; margin: .35rem 0 0; padding-left: 1.1rem; }
.hint { color: var(--muted); font-size: .85rem; margin: .35rem 0 0; padding-left: 1.1rem; }
button, .button {
  display: inline-block; font: inherit; font-weight: 600; cursor: pointer; border-radius: 8px;
  padding: .6rem 1.1rem; border: 1px solid var(--accent); background: var(--accent); color: #fff;
}
button:hover, .button:hover { background: var(--accent-dark); text-decoration: none; }
button.secondary { background: #fff; color: var(--ink); border-color: #cfd4e0; padding: .35rem .8rem; font-size: .9rem; }
button.secondary:hover { background: #f4f5f9; }
form.inline { display: inline; margin: 0; }
table { width: 100%; border-collapse: collapse; font-size: .95rem; }
th, td { text-align: left; padding: .55rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; }
tr:last-child td { border-bottom: 0; }
td:first-child { white-space: nowrap; }
/* Except a browser's name, above its User-Agent (one long word): those wrap. */
table.sessions td:first-child { white-space: normal; }
details.raw summary { cursor: pointer; color: var(--muted); font-size: .85rem; }
details.raw code { display: block; margin-top: .35rem; font-size: .8rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .55rem 1.25rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-weight: 500; overflow-wrap: anywhere; }
.badge { display: inline-block; white-space: nowrap; padding: .1rem .55rem; border-radius: 999px; font-size: .8rem; font-weight: 600; background: var(--accent-soft); color: var(--accent); }
.muted { color: var(--muted); }
.actions { display: flex; gap: .75rem; flex-wrap: wrap; margin-top: 1.25rem; }
.big-status { font-size: 3.5rem; font-weight: 800; color: var(--accent); margin: 0; line-height: 1; }
/* Last, to override the rules above. Tablets: the two columns of .split one above the other. */
@media (max-width: 900px) {
  .split { grid-template-columns: 1fr; }
}
/* Phones: the navigation gets a row of its own, tables become one card per row. */
@media (max-width: 720px) {
  .topbar .inner { padding: .6rem 1rem; gap: .5rem 1rem; }
  .topbar nav { order: 3; flex-basis: 100%; flex-wrap: wrap; gap: .35rem 1.1rem; }
  main { padding: 1.25rem 1rem 3rem; }
  .card { padding: 1.1rem; }
  h1 { font-size: 1.55rem; }
  table, thead, tbody, tr, th, td { display: block; }
  thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  tr { padding: .5rem 0; border-bottom: 1px solid var(--line); }
  tr:last-child { border-bottom: 0; }
  td, td:first-child { border: 0; padding: .15rem 0; white-space: normal; }
  td:first-child { font-weight: 600; }
  td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font-weight: 500; }
  td:first-child[data-label]::before { content: none; }
}
`;

/** For the Content-Security-Policy: this stylesheet, and no other, may style the pages. */
export const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;
