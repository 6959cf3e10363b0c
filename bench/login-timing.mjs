// How long a wrong password takes to be refused, by how the user's password is stored: with the
// preferred hasher (bcrypt_sha256, cost 12), with a lower bcrypt cost, with scrypt, or not at all
// (unknown user). An attacker timing answers must not tell these users apart (Django's
// harden_runtime, CVE-2016-2513). Runs against the compiled library: `npm run build` first.
//
//   node bench/login-timing.mjs [--samples=15]
import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import { BCryptSHA256Hasher, PasswordHasher, ScryptHasher } from '../dist/index.js';

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key, Number(value)];
  }),
);
const SAMPLES = args.samples ?? 15;

const hasher = new PasswordHasher({ backends: [], passwordHashers: ['bcrypt_sha256', 'scrypt'] });
const stored = {
  'current (bcrypt_sha256, cost 12)': await hasher.make('correct horse'),
  'older bcrypt cost 4': await new BCryptSHA256Hasher({ rounds: 4, offThread: false }).encode('correct horse'),
  'scrypt (not preferred)': await new ScryptHasher().encode('correct horse'),
  'unknown user (no hash)': null,
};

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const rows = [];
for (const [label, encoded] of Object.entries(stored)) {
  await hasher.check('warm-up', encoded);
  const times = [];
  for (let i = 0; i < SAMPLES; i++) {
    const start = performance.now();
    const { valid } = await hasher.check(`wrong ${i}`, encoded);
    times.push(performance.now() - start);
    if (valid) throw new Error('a wrong password was accepted');
  }
  rows.push({ label, median: median(times), min: Math.min(...times), max: Math.max(...times) });
}
await hasher.onApplicationShutdown();

const reference = rows[0].median;
console.log(`wrong password, ${SAMPLES} samples each (ms)`);
console.log('stored as                          median     min     max   / current');
for (const row of rows) {
  console.log(
    `${row.label.padEnd(32)} ${row.median.toFixed(1).padStart(7)} ${row.min.toFixed(1).padStart(7)} ${row.max.toFixed(1).padStart(7)}   ${(row.median / reference).toFixed(2)}×`,
  );
}
