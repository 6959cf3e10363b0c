// Real-user login latency while one address floods the login with unknown usernames, with the
// login throttle's protections (address ceiling, fair share of the hasher per address) and
// without them. Runs against the compiled library: `npm run build` first.
//
//   node bench/login-flood.mjs [--rounds=10] [--burst=300] [--rate=50] [--seconds=8] [--logins=30]
//
// Each mode boots a Nest app (in-memory SQLite, ModelBackend, one user) on 127.0.0.1. The flood
// comes from another process and another loopback address (127.0.0.2), with wrong logins for
// fresh usernames: `burst` of them at once, then `rate` a second until `seconds` have passed
// (bounded: at most 50,000 requests). Meanwhile real users log in every 250 ms, in turn from
// 127.0.0.1, .3 and .4. The hash time is the median of their logins with no flood; the target is
// a real-login p99 under the steady flood below twice that. The burst's first second is printed
// apart: the attacker's process, the app's main thread and the hashing share this machine's cores.
import 'reflect-metadata';
import { Body, Controller, HttpCode, Inject, Module, Post, Req, UnauthorizedException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { fork } from 'node:child_process';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { AuthModule, AuthService, BCryptSHA256Hasher, BcryptWorkerPool, ModelBackend, UserManager, authEntities } from '../dist/index.js';

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key, Number(value)];
  }),
);
const ROUNDS = args.rounds ?? 10;
const BURST = args.burst ?? 300;
const RATE = args.rate ?? 50;
const SECONDS = args.seconds ?? 8;
const LOGINS = args.logins ?? 30;
const MAX_FLOOD_REQUESTS = 50_000;
const PASSWORD = 'correct horse battery staple';

function login(port, body, localAddress) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const started = performance.now();
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/login',
        agent: false,
        localAddress,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

if (args.floodPort) {
  // The attacker's process: a burst, then a steady rate, then the tally on stdout via IPC.
  const port = args.floodPort;
  const statuses = {};
  const pending = [];
  let sent = 0;
  const fire = () => {
    const n = sent++;
    pending.push(
      login(port, { username: `nobody-${n}`, password: 'guess' }, '127.0.0.2').then(
        ({ status }) => void (statuses[status] = (statuses[status] ?? 0) + 1),
        () => void (statuses.error = (statuses.error ?? 0) + 1),
      ),
    );
  };
  const deadline = performance.now() + SECONDS * 1000;
  for (let i = 0; i < BURST; i++) fire();
  const timer = setInterval(() => {
    if (performance.now() >= deadline || sent >= MAX_FLOOD_REQUESTS) {
      clearInterval(timer);
      Promise.all(pending).then(() => process.send({ sent, statuses }, () => process.exit(0)));
      return;
    }
    fire();
  }, 1000 / RATE);
} else {
setTimeout(() => {
  console.error('login-flood: gave up after 180 s');
  process.exit(1);
}, 180_000).unref();

class PagesController {
  constructor(auth) {
    this.auth = auth;
  }

  async login(request, body) {
    const user = await this.auth.authenticate(request, body);
    if (!user) throw new UnauthorizedException('Invalid username or password.');
    await this.auth.login(request, user);
    return { username: user.username };
  }
}
Inject(AuthService)(PagesController, undefined, 0);
Req()(PagesController.prototype, 'login', 0);
Body()(PagesController.prototype, 'login', 1);
Reflect.decorate([Post('login'), HttpCode(200)], PagesController.prototype, 'login', Object.getOwnPropertyDescriptor(PagesController.prototype, 'login'));
Reflect.decorate([Controller()], PagesController);

async function boot(protectedMode) {
  const pool = protectedMode
    ? new BcryptWorkerPool()
    : // Without fair shares: any address may take every thread and the whole line.
      new BcryptWorkerPool({ maxRunningPerLane: 64, maxQueuedPerLane: 10_000 });
  class AppModule {}
  Reflect.decorate(
    [
      Module({
        imports: [
          TypeOrmModule.forRoot({ type: 'better-sqlite3', database: ':memory:', entities: [...authEntities], synchronize: true }),
          AuthModule.forRoot({
            backends: [ModelBackend],
            session: { secret: 'login-flood-benchmark-secret-of-enough-length' },
            passwordHashers: [new BCryptSHA256Hasher({ rounds: ROUNDS, pool })],
            throttle: protectedMode ? {} : false,
          }),
        ],
        controllers: [PagesController],
      }),
    ],
    AppModule,
  );
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  await app.get(UserManager).createUser({ username: 'carol', password: PASSWORD });
  return { app, pool, port: app.getHttpServer().address().port };
}

/** Real users log in from their own addresses (each address may start 2 logins a second). */
const REAL_ADDRESSES = ['127.0.0.1', '127.0.0.3', '127.0.0.4'];
let nextReal = 0;
const realLogin = (port) => login(port, { username: 'carol', password: PASSWORD }, REAL_ADDRESSES[nextReal++ % REAL_ADDRESSES.length]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};

async function measure(label, protectedMode) {
  const { app, pool, port } = await boot(protectedMode);
  try {
    // Warm-up, then the hash time: the real user's login with nothing else going on.
    for (let i = 0; i < 3; i++) await realLogin(port);
    const quiet = [];
    for (let i = 0; i < 10; i++) quiet.push((await realLogin(port)).ms);
    const hashMs = percentile(quiet, 50);

    const attacker = fork(new URL(import.meta.url).pathname, [`--floodPort=${port}`, `--burst=${BURST}`, `--rate=${RATE}`, `--seconds=${SECONDS}`], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const tally = new Promise((resolve) => attacker.once('message', resolve));
    const floodStart = performance.now();
    const deadline = floodStart + SECONDS * 1000;
    const real = [];
    for (let i = 0; i < LOGINS && performance.now() < deadline; i++) {
      const startedAt = performance.now() - floodStart;
      real.push({ ...(await realLogin(port)), startedAt });
      await sleep(250);
    }
    const { sent, statuses } = await tally;
    const served = real.filter((r) => r.status === 200);
    const steady = served.filter((r) => r.startedAt >= 1000).map((r) => r.ms);
    const burst = served.filter((r) => r.startedAt < 1000).map((r) => r.ms);
    return {
      label,
      hashMs,
      p50: percentile(steady, 50),
      p99: percentile(steady, 99),
      burstMax: burst.length ? Math.max(...burst) : undefined,
      refusedReal: real.length - served.length,
      realCount: real.length,
      floodCount: sent,
      floodStatuses: statuses,
      timeline: real.map((r) => r.ms),
    };
  } finally {
    await app.close();
    await pool.close();
  }
}

const results = [await measure('protected', true), await measure('unprotected', false)];
if (process.env.DEBUG_TIMELINE) for (const r of results) console.log(r.label, r.timeline.map((ms) => ms.toFixed(0)).join(' '));

const f = (n) => (n === undefined ? '     -' : n.toFixed(0).padStart(6));
console.log(`bcrypt_sha256 cost ${ROUNDS}; flood from 127.0.0.2: ${BURST} at once, then ${RATE}/s for ${SECONDS} s; real users: a login every 250 ms from 127.0.0.1, .3, .4`);
console.log('real logins: p50/p99 once the flood runs steadily (from 1 s on); burst max: during its first second');
console.log('mode          hash ms  real p50  real p99  p99/hash  burst max  real refused  flood requests  flood answers');
for (const r of results) {
  console.log(
    `${r.label.padEnd(12)}  ${f(r.hashMs)}    ${f(r.p50)}    ${f(r.p99)}    ${(r.p99 / r.hashMs).toFixed(2).padStart(5)}×     ${f(r.burstMax)}  ` +
      `${`${r.refusedReal}/${r.realCount}`.padStart(12)}  ${String(r.floodCount).padStart(14)}  ${JSON.stringify(r.floodStatuses)}`,
  );
}
const [ours] = results;
console.log(`target (protected): real-login p99 < 2 × hash time: ${ours.p99 < 2 * ours.hashMs && ours.refusedReal === 0 ? 'met' : 'NOT met'}`);
}
