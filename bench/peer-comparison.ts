/**
 * nestjs-session-auth against the stack a Nest team would otherwise wire by hand
 * (@nestjs/passport + passport-local + express-session on better-sqlite3-session-store),
 * in one run, printing ratios. Each app runs in its own process on its own loopback port and
 * SQLite file, so one app's garbage collection or event loop never lands in the other's numbers.
 *
 *   npm run bench                       (builds the package and this folder first)
 *   node bench/dist/peer-comparison.js --duration 4 --connections 10 --login-connections 4 --wal
 *
 * Every scenario is measured twice per app in the order ours, peer, peer, ours, so a drift of
 * the machine during the run weighs on both alike. Latency percentiles are the mean of the two
 * runs; req/s is all responses over all measured time. "rows written/req" is counted apart from
 * the load, over a few sequential requests, as the rows SQLite changed (`total_changes()` on every
 * connection of the app): under load, requests still in flight when a run ends would blur it.
 */
import autocannon from 'autocannon';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { BCRYPT_COST, BENCH_USER, type AppMessage, type RunnerMessage } from './app-process.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '4' },
    connections: { type: 'string', default: '10' },
    'login-connections': { type: 'string', default: '4' },
    /** Both apps' SQLite files in WAL mode instead of the default rollback journal. */
    wal: { type: 'boolean', default: false },
  },
});
const DURATION_S = positive(args.duration, '--duration');
const CONNECTIONS = positive(args.connections, '--connections');
const LOGIN_CONNECTIONS = positive(args['login-connections'], '--login-connections');
const WARMUP_S = 2;
const PROBE_REQUESTS = 10;
/** The whole run is bounded: a wedged app can never keep this script (or its children) alive. */
const DEADLINE_MS = (3 * 4 * DURATION_S + 6 * WARMUP_S) * 1000 + 90_000;

const here = dirname(fileURLToPath(import.meta.url));
const credentials = JSON.stringify({ username: BENCH_USER.username, password: BENCH_USER.password });

interface Target {
  method?: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

interface Scenario {
  name: string;
  connections: number;
  target(app: AppProcess): Target;
}

/** One app under test: a forked process that answers on a loopback port. */
class AppProcess {
  cookie = '';
  private constructor(
    readonly name: string,
    readonly origin: string,
    private readonly child: ChildProcess,
  ) {}

  static start(name: string, file: string, dataDir: string): Promise<AppProcess> {
    const child = fork(join(here, file), [], {
      env: { ...process.env, BENCH_DATA_DIR: dataDir, BENCH_WAL: args.wal ? '1' : '0' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Promise((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`${name} app exited with code ${code} before it was ready`)));
      child.once('message', (message: AppMessage) => {
        if (message.type === 'ready') resolve(new AppProcess(name, `http://127.0.0.1:${message.port}`, child));
      });
    });
  }

  rowsWritten(): Promise<number> {
    return new Promise((resolve) => {
      const listen = (message: AppMessage) => {
        if (message.type !== 'rows-written') return;
        this.child.off('message', listen);
        resolve(message.rows);
      };
      this.child.on('message', listen);
      this.child.send({ type: 'rows-written' } satisfies RunnerMessage);
    });
  }

  /** Log in once and keep the session cookie for the logged-in scenario; check the guard works. */
  async logIn(): Promise<void> {
    const response = await fetch(`${this.origin}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: credentials,
    });
    this.cookie = response.headers.getSetCookie()[0]?.split(';')[0] ?? '';
    if (response.status !== 200 || !this.cookie) throw new Error(`${this.name}: login answered ${response.status}`);
    const me = await fetch(`${this.origin}/me`, { headers: { cookie: this.cookie } });
    const anonymous = await fetch(`${this.origin}/me`, { redirect: 'manual' });
    if (me.status !== 200 || anonymous.status === 200) {
      throw new Error(`${this.name}: GET /me answered ${me.status} with the cookie and ${anonymous.status} without`);
    }
  }

  stop(): void {
    if (this.child.connected) this.child.disconnect();
    this.child.kill();
  }
}

interface Measurement {
  responses: number;
  seconds: number;
  p50: number[];
  p99: number[];
  failures: number;
}

const scenarios: Scenario[] = [
  { name: 'anonymous GET /public', connections: CONNECTIONS, target: () => ({ path: '/public' }) },
  {
    name: 'logged-in GET /me',
    connections: CONNECTIONS,
    target: (app) => ({ path: '/me', headers: { cookie: app.cookie } }),
  },
  {
    name: `POST /login (bcrypt cost ${BCRYPT_COST})`,
    connections: LOGIN_CONNECTIONS,
    target: () => ({ method: 'POST', path: '/login', headers: { 'content-type': 'application/json' }, body: credentials }),
  },
];

async function load(app: AppProcess, scenario: Scenario, seconds: number): Promise<autocannon.Result> {
  const { method = 'GET', path, headers, body } = scenario.target(app);
  return autocannon({ url: app.origin + path, method, headers, body, connections: scenario.connections, duration: seconds });
}

async function measure(app: AppProcess, scenario: Scenario, into: Measurement): Promise<void> {
  const result = await load(app, scenario, DURATION_S);
  into.responses += result['2xx'] + result.non2xx;
  into.seconds += result.duration;
  into.p50.push(result.latency.p50);
  into.p99.push(result.latency.p99);
  into.failures += result.non2xx + result.errors;
}

/** Rows the app writes per request of the scenario, from a few requests sent one after another. */
async function rowsPerRequest(app: AppProcess, scenario: Scenario): Promise<number> {
  const { method = 'GET', path, headers, body } = scenario.target(app);
  const before = await settled(app);
  for (let i = 0; i < PROBE_REQUESTS; i++) {
    const response = await fetch(app.origin + path, { method, headers, body });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`${app.name}: ${method} ${path} answered ${response.status}`);
  }
  return ((await app.rowsWritten()) - before) / PROBE_REQUESTS;
}

/**
 * The app's row count once it stopped changing for a second: requests still in flight from the
 * last load (a queued login finishes well after the load generator gave up on it) must not be
 * counted as the probe's writes.
 */
async function settled(app: AppProcess): Promise<number> {
  let rows = await app.rowsWritten();
  for (let quiet = 0, polls = 0; quiet < 4 && polls < 40; polls++) {
    await delay(250);
    const now = await app.rowsWritten();
    quiet = now === rows ? quiet + 1 : 0;
    rows = now;
  }
  return rows;
}

function emptyMeasurement(): Measurement {
  return { responses: 0, seconds: 0, p50: [], p99: [], failures: 0 };
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'nestjs-session-auth-bench-'));
  const apps: AppProcess[] = [];
  const deadline = setTimeout(() => {
    console.error(`The benchmark did not finish within ${DEADLINE_MS / 1000} s; stopping.`);
    apps.forEach((app) => app.stop());
    process.exit(1);
  }, DEADLINE_MS);
  deadline.unref();
  try {
    const [ours, peer] = await Promise.all([
      AppProcess.start('ours', 'ours.app.js', dataDir),
      AppProcess.start('peer', 'peer.app.js', dataDir),
    ]);
    apps.push(ours, peer);
    await ours.logIn();
    await peer.logIn();

    const rows: string[][] = [];
    let failed = false;
    for (const scenario of scenarios) {
      process.stderr.write(`${scenario.name} …\n`);
      await load(ours, scenario, WARMUP_S);
      await load(peer, scenario, WARMUP_S);
      const results = { ours: emptyMeasurement(), peer: emptyMeasurement() };
      for (const app of [ours, peer, peer, ours]) await measure(app, scenario, results[app.name as 'ours' | 'peer']);
      const [a, b] = [summarize(results.ours), summarize(results.peer)];
      const [aRows, bRows] = [await rowsPerRequest(ours, scenario), await rowsPerRequest(peer, scenario)];
      rows.push(
        [`${scenario.name}, ${scenario.connections} conn.`, 'ours', num(a.rps), ms(a.p50), ms(a.p99), aRows.toFixed(2)],
        ['', 'peer', num(b.rps), ms(b.p50), ms(b.p99), bRows.toFixed(2)],
        ['', '**ours/peer**', `**${ratio(a.rps, b.rps)}**`, ratio(a.p50, b.p50), ratio(a.p99, b.p99), ''],
      );
      for (const [name, result] of Object.entries(results)) {
        if (result.failures > 0) {
          failed = true;
          console.error(`${scenario.name}: ${name} had ${result.failures} errors or non-2xx responses.`);
        }
      }
    }

    const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
    console.log(`\nnestjs-session-auth (ours) vs @nestjs/passport + passport-local + express-session (peer)`);
    const journal = args.wal ? 'WAL' : 'rollback journal (default)';
    console.log(
      `Node ${process.version}, ${cpus().length} × ${cpu}; ${DURATION_S} s per run, ` +
        `each app measured twice (ours, peer, peer, ours); SQLite ${journal}\n`,
    );
    printTable(['scenario', 'app', 'req/s', 'p50 ms', 'p99 ms', 'rows written/req'], rows);
    console.log('\nours/peer: above 1× means more requests per second for ours; below 1× in the latency columns means faster.');
    if (failed) process.exitCode = 1;
  } finally {
    apps.forEach((app) => app.stop());
    clearTimeout(deadline);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function summarize(m: Measurement) {
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  return {
    rps: m.responses / m.seconds,
    p50: mean(m.p50),
    p99: mean(m.p99),
  };
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((width, i) => (i < 2 ? '-'.repeat(width + 2) : '-'.repeat(width + 1) + ':')).join('|')}|`);
  rows.forEach((row) => console.log(line(row)));
}

function num(value: number): string {
  return value >= 100 ? Math.round(value).toString() : value.toFixed(1);
}

function ms(value: number): string {
  return value >= 10 ? Math.round(value).toString() : value.toFixed(1);
}

function ratio(ours: number, peer: number): string {
  return peer > 0 ? `${(ours / peer).toFixed(2)}×` : '–';
}

function positive(value: string | undefined, flag: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) {
    console.error(`${flag} must be a positive number, got ${value}.`);
    process.exit(2);
  }
  return number;
}

await main();
