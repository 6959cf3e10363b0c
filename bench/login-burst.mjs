// Event-loop delay during a burst of 20 concurrent logins, with bcryptjs on the main thread and
// on the worker pool (same cost, 10). Runs against the compiled library: `npm run build` first.
//
//   node bench/login-burst.mjs [--logins=20] [--rounds=10] [--bursts=3]
//
// Each mode boots a Nest app (in-memory SQLite, ModelBackend, one user) on 127.0.0.1, warms up,
// then for each burst fires the logins at once while a cheap GET /ping is sent every 10 ms and
// perf_hooks.monitorEventLoopDelay samples the loop. Ping latency is measured from the moment
// the ping was due, so a ping delayed by a blocked loop counts as slow.
import 'reflect-metadata';
import { Body, Controller, Get, HttpCode, Inject, Module, Post, Req, UnauthorizedException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { AuthModule, AuthService, BCryptSHA256Hasher, ModelBackend, UserManager, authEntities } from '../dist/index.js';

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key, Number(value)];
  }),
);
const LOGINS = args.logins ?? 20;
const ROUNDS = args.rounds ?? 10;
const BURSTS = args.bursts ?? 3;
const PING_EVERY_MS = 10;
const PASSWORD = 'correct horse battery staple';

// Never hang: the whole run is bounded.
setTimeout(() => {
  console.error('login-burst: gave up after 120 s');
  process.exit(1);
}, 120_000).unref();

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

  ping() {
    return 'pong';
  }
}
Inject(AuthService)(PagesController, undefined, 0);
Req()(PagesController.prototype, 'login', 0);
Body()(PagesController.prototype, 'login', 1);
const method = (name) => Object.getOwnPropertyDescriptor(PagesController.prototype, name);
Reflect.decorate([Post('login'), HttpCode(200)], PagesController.prototype, 'login', method('login'));
Reflect.decorate([Get('ping')], PagesController.prototype, 'ping', method('ping'));
Reflect.decorate([Controller()], PagesController);

async function boot(hasher) {
  class AppModule {}
  Reflect.decorate(
    [
      Module({
        imports: [
          TypeOrmModule.forRoot({ type: 'better-sqlite3', database: ':memory:', entities: [...authEntities], synchronize: true }),
          AuthModule.forRoot({
            backends: [ModelBackend],
            session: { secret: 'login-burst-benchmark-secret' },
            passwordHashers: [hasher],
            // Every login here is right; keep lockout bookkeeping out of the measurement.
            throttle: false,
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
  return { app, port: app.getHttpServer().address().port };
}

function send(port, method, path, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const login = (port) => send(port, 'POST', '/login', { username: 'carol', password: PASSWORD });

async function burst(port) {
  const pings = [];
  const pending = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const start = performance.now();
  let due = start;
  const timer = setInterval(() => {
    // Send every ping that fell due, even if the loop was too busy to send it on time.
    while (due <= performance.now()) {
      const dueAt = due;
      pending.push(send(port, 'GET', '/ping').then(() => pings.push(performance.now() - dueAt)));
      due += PING_EVERY_MS;
    }
  }, PING_EVERY_MS);
  loop.enable();
  const statuses = await Promise.all(Array.from({ length: LOGINS }, () => login(port)));
  const total = performance.now() - start;
  clearInterval(timer);
  loop.disable();
  await Promise.all(pending);
  if (statuses.some((status) => status !== 200)) throw new Error(`a login failed: ${statuses.join(',')}`);
  return { loop, pings, total };
}

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};
const median = (values) => percentile(values, 50);

async function measure(label, hasher) {
  const { app, port } = await boot(hasher);
  try {
    // Warm-up: JIT, first session row, and for the pool its threads.
    await Promise.all(Array.from({ length: 4 }, () => login(port)));
    const runs = [];
    for (let i = 0; i < BURSTS; i++) runs.push(await burst(port));
    const ms = (ns) => ns / 1e6;
    return {
      label,
      loopP50: median(runs.map((run) => ms(run.loop.percentile(50)))),
      loopP99: median(runs.map((run) => ms(run.loop.percentile(99)))),
      loopMax: Math.max(...runs.map((run) => ms(run.loop.max))),
      pingP99: percentile(runs.flatMap((run) => run.pings), 99),
      pings: runs.reduce((sum, run) => sum + run.pings.length, 0),
      total: median(runs.map((run) => run.total)),
    };
  } finally {
    await app.close();
  }
}

const before = await measure('main thread', new BCryptSHA256Hasher({ rounds: ROUNDS, offThread: false }));
const after = await measure('worker pool', new BCryptSHA256Hasher({ rounds: ROUNDS }));

const f = (n) => n.toFixed(1).padStart(8);
console.log(`${LOGINS} concurrent logins, bcrypt_sha256 cost ${ROUNDS}, ${BURSTS} bursts per mode (median of bursts; max over all)`);
console.log('mode          loop p50  loop p99  loop max  ping p99   burst   (ms; pings sent)');
for (const r of [before, after]) {
  console.log(`${r.label.padEnd(12)}${f(r.loopP50)}  ${f(r.loopP99)}  ${f(r.loopMax)}  ${f(r.pingP99)}${f(r.total)}   (${r.pings})`);
}
const ratio = (a, b) => `${(a / b).toFixed(1)}×`;
console.log(
  `main thread / worker pool: loop p99 ${ratio(before.loopP99, after.loopP99)}, loop max ${ratio(before.loopMax, after.loopMax)}, ` +
    `ping p99 ${ratio(before.pingP99, after.pingP99)}, burst time ${ratio(before.total, after.total)}`,
);
