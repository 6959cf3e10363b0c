import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';

/** The one account both apps hold, hashed with bcrypt at the same cost on both sides. */
export const BENCH_USER = { username: 'bench', email: 'bench@example.com', password: 'correct horse battery staple' };
export const BCRYPT_COST = 10;
export const SESSION_SECRET = 'benchmark-secret-that-is-long-enough';
/** Both apps give the session cookie the same lifetime, so the stores are asked the same things. */
export const SESSION_MAX_AGE_MS = 14 * 24 * 60 * 60 * 1000;

/** `--wal`: every SQLite connection of both apps in write-ahead-log mode (default: SQLite's rollback journal). */
export const WAL = process.env.BENCH_WAL === '1';

/** Messages between the runner and an app process (over the fork IPC channel). */
export type RunnerMessage = { type: 'rows-written' };
export type AppMessage = { type: 'ready'; port: number } | { type: 'rows-written'; rows: number };

export interface BenchApp {
  app: INestApplication;
  /** Rows inserted, updated or deleted so far on every SQLite connection the app holds. */
  rowsWritten(): number;
}

/** The rows changed on one better-sqlite3 connection since it was opened (SQLite's `total_changes()`). */
export function totalChanges(connection: { prepare(sql: string): { get(): unknown } }): number {
  return (connection.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
}

/**
 * Start an app in this (forked) process on a free loopback port and tell the runner the port.
 * The process leaves as soon as the runner disconnects, so a crashed or interrupted run leaves
 * no server behind.
 */
export async function serve(start: (dataDir: string) => Promise<BenchApp>): Promise<void> {
  const send = process.send?.bind(process);
  const dataDir = process.env.BENCH_DATA_DIR;
  if (!send || !dataDir) {
    console.error('This file is started by bench/peer-comparison.js, not by hand.');
    process.exit(2);
  }
  process.on('disconnect', () => process.exit(0));
  const { app, rowsWritten } = await start(dataDir);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  process.on('message', (message: RunnerMessage) => {
    if (message.type === 'rows-written') send({ type: 'rows-written', rows: rowsWritten() } satisfies AppMessage);
  });
  send({ type: 'ready', port } satisfies AppMessage);
}
