/**
 * nestjs-session-auth against a bare Nest app and the stack a Nest team would otherwise wire by
 * hand (@nestjs/passport + passport-local + express-session, on a SQLite store or on its
 * MemoryStore), in one run, printing ratios. Each app runs in its own process on its own
 * loopback port and SQLite file, so one app's garbage collection or event loop never lands in
 * another's numbers.
 *
 *   npm run bench                       (builds the package and this folder first)
 *   node bench/dist/peer-comparison.js --duration 4 --rounds 3 --connections 10 --login-connections 4 --wal
 *
 * Every scenario is measured in `rounds` rounds (at least 3, default 5), each running every app
 * of the scenario once, the order rotated from round to round, so a drift of the machine weighs on
 * all alike; req/s and latency are the median over the rounds. A ratio is the median of the
 * rounds' own ratios (ours against the other app in the same round): a burst of load from
 * elsewhere on a shared machine then skews one round's pair, not the whole comparison. "rows written/req" is counted apart
 * from the load, over a few sequential requests, as the rows SQLite changed (`total_changes()` on
 * every connection of the app): under load, requests still in flight when a run ends would blur it.
 */
import autocannon from 'autocannon';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { BCRYPT_COST, BENCH_USER, type AppMessage, type RunnerMessage } from './app-process.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '10' },
    'login-connections': { type: 'string', default: '4' },
    /** Both apps' SQLite files in WAL mode instead of the default rollback journal. */
    wal: { type: 'boolean', default: false },
  },
});
const DURATION_S = positive(args.duration, '--duration');
const ROUNDS = Math.max(3, Math.round(positive(args.rounds, '--rounds')));
const CONNECTIONS = positive(args.connections, '--connections');
const LOGIN_CONNECTIONS = positive(args['login-connections'], '--login-connections');
const WARMUP_S = 2;
const PROBE_REQUESTS = 10;
/** The whole run is bounded: a wedged app can never keep this script (or its children) alive. */
const DEADLINE_MS = (ROUNDS * 9 * DURATION_S + 9 * WARMUP_S) * 1000 + 120_000;

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
  /** The apps measured, ours first. */
  apps: AppName[];
  target(app: AppProcess): Target;
  /** What ours must reach against another app of the scenario: req/s ratio at least `atLeast`. */
  targets: { versus: AppName; atLeast: number }[];
}

type AppName = 'ours' | 'bare' | 'passport+memory' | 'passport+sqlite';

const APP_FILES: Record<AppName, { file: string; env?: Record<string, string> }> = {
  ours: { file: 'ours.app.js' },
  bare: { file: 'bare.app.js' },
  'passport+memory': { file: 'peer.app.js', env: { BENCH_PEER_STORE: 'memory' } },
  'passport+sqlite': { file: 'peer.app.js', env: { BENCH_PEER_STORE: 'sqlite' } },
};

/** One app under test: a forked process that answers on a loopback port. */
class AppProcess {
  cookie = '';
  private constructor(
    readonly name: string,
    readonly origin: string,
    private readonly child: ChildProcess,
  ) {}

  static start(name: AppName, dataDir: string): Promise<AppProcess> {
    const { file, env } = APP_FILES[name];
    const ownDir = join(dataDir, name.replace('+', '-'));
    mkdirSync(ownDir, { recursive: true });
    const child = fork(join(here, file), [], {
      env: { ...process.env, ...env, BENCH_DATA_DIR: ownDir, BENCH_WAL: args.wal ? '1' : '0' },
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
    if (this.name === 'bare') return;
    const response = await fetch(`${this.origin}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: credentials,
    });
    // Every cookie the login set, as a browser sends them back.
    this.cookie = response.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ');
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
  rps: number[];
  p50: number[];
  p99: number[];
  failures: number;
}

const loggedIn = (app: AppProcess, others: AppProcess[]) => app.cookie || others.find((other) => other.name === 'ours')!.cookie;

function scenarios(apps: AppProcess[]): Scenario[] {
  return [
    {
      name: 'no session cookie, open route (GET /public)',
      connections: CONNECTIONS,
      apps: ['ours', 'bare', 'passport+memory'],
      target: () => ({ path: '/public' }),
      targets: [{ versus: 'bare', atLeast: 0.9 }],
    },
    {
      // The bare app gets the same cookie header, which it ignores.
      name: 'logged-in cookie, route reading neither session nor user (GET /health)',
      connections: CONNECTIONS,
      apps: ['ours', 'bare', 'passport+memory'],
      target: (app) => ({ path: '/health', headers: { cookie: loggedIn(app, apps) } }),
      targets: [{ versus: 'bare', atLeast: 0.85 }],
    },
    {
      name: 'logged-in GET /me (@LoginRequired, @CurrentUser)',
      connections: CONNECTIONS,
      apps: ['ours', 'bare', 'passport+memory', 'passport+sqlite'],
      target: (app) => ({ path: '/me', headers: { cookie: loggedIn(app, apps) } }),
      targets: [
        { versus: 'passport+memory', atLeast: 1.5 },
        { versus: 'passport+sqlite', atLeast: 5 },
      ],
    },
    {
      name: `POST /login (bcrypt cost ${BCRYPT_COST})`,
      connections: LOGIN_CONNECTIONS,
      apps: ['ours', 'passport+sqlite'],
      target: () => ({ method: 'POST', path: '/login', headers: { 'content-type': 'application/json' }, body: credentials }),
      targets: [],
    },
  ];
}

async function load(app: AppProcess, scenario: Scenario, seconds: number): Promise<autocannon.Result> {
  const { method = 'GET', path, headers, body } = scenario.target(app);
  return autocannon({ url: app.origin + path, method, headers, body, connections: scenario.connections, duration: seconds });
}

async function measure(app: AppProcess, scenario: Scenario, into: Measurement): Promise<void> {
  const result = await load(app, scenario, DURATION_S);
  into.rps.push((result['2xx'] + result.non2xx) / result.duration);
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
  return { rps: [], p50: [], p99: [], failures: 0 };
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
    const names = Object.keys(APP_FILES) as AppName[];
    apps.push(...(await Promise.all(names.map((name) => AppProcess.start(name, dataDir)))));
    const byName = (name: AppName) => apps.find((app) => app.name === name)!;
    for (const app of apps) await app.logIn();

    const rows: string[][] = [];
    const verdicts: string[] = [];
    let failed = false;
    for (const scenario of scenarios(apps)) {
      process.stderr.write(`${scenario.name} …\n`);
      const measured = scenario.apps.map(byName);
      for (const app of measured) await load(app, scenario, WARMUP_S);
      const results = new Map(measured.map((app) => [app.name, emptyMeasurement()]));
      for (let round = 0; round < ROUNDS; round++) {
        const order = measured.map((_, i) => measured[(i + round) % measured.length]);
        for (const app of order) await measure(app, scenario, results.get(app.name)!);
      }
      const summaries = new Map(measured.map((app) => [app.name, summarize(results.get(app.name)!)]));
      const ours = summaries.get('ours')!;
      rows.push([`${scenario.name}, ${scenario.connections} conn.`, '', '', '', '', '', '']);
      for (const app of measured) {
        const summary = summaries.get(app.name)!;
        const written = app.name === 'bare' ? 0 : await rowsPerRequest(app, scenario);
        const versusApp = app.name === 'ours' ? '' : `${pairedRatio(results.get('ours')!, results.get(app.name)!).toFixed(2)}×`;
        rows.push(['', app.name, num(summary.rps), ms(summary.p50), ms(summary.p99), written.toFixed(2), versusApp]);
      }
      for (const { versus, atLeast } of scenario.targets) {
        const value = pairedRatio(results.get('ours')!, results.get(versus)!);
        const met = value >= atLeast;
        verdicts.push(`${met ? 'met    ' : 'NOT met'}  ${scenario.name}: ours/${versus} ${value.toFixed(2)}× (target ≥ ${atLeast}×)`);
      }
      for (const [name, result] of results) {
        if (result.failures > 0) {
          failed = true;
          console.error(`${scenario.name}: ${name} had ${result.failures} errors or non-2xx responses.`);
        }
      }
    }

    const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
    console.log(`\nnestjs-session-auth (ours) vs bare Nest and @nestjs/passport + passport-local + express-session (MemoryStore, SQLite store)`);
    const journal = args.wal ? 'WAL' : 'rollback journal (default)';
    console.log(
      `Node ${process.version}, ${cpus().length} × ${cpu}; ${DURATION_S} s per run, ${ROUNDS} rounds per scenario ` +
        `(order rotated; medians, ratios as the median of each round's ratio); SQLite ${journal}\n`,
    );
    printTable(['scenario', 'app', 'req/s', 'p50 ms', 'p99 ms', 'rows written/req', 'ours/app req/s'], rows);
    console.log('\nours/app: above 1× means more requests per second for ours.\n');
    for (const verdict of verdicts) console.log(verdict);
    if (failed) process.exitCode = 1;
  } finally {
    apps.forEach((app) => app.stop());
    clearTimeout(deadline);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

function summarize(m: Measurement) {
  return { rps: median(m.rps), p50: median(m.p50), p99: median(m.p99) };
}

/** Ours against another app: the median of the rounds' ratios, each of two runs in the same round. */
function pairedRatio(ours: Measurement, other: Measurement): number {
  return median(ours.rps.map((rps, round) => rps / other.rps[round]));
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

function positive(value: string | undefined, flag: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) {
    console.error(`${flag} must be a positive number, got ${value}.`);
    process.exit(2);
  }
  return number;
}

await main();
