import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { PasswordHasherBusy } from './password-hasher-busy.js';

/**
 * The worker's whole program. It is passed as a string (`eval: true`) rather than as a file so
 * the pool works the same from compiled `dist/` and from TypeScript sources run by a test
 * runner, where no `.js` file sits next to this module. bcryptjs is loaded by the absolute path
 * the main thread resolved, so the worker needs no module resolution of its own.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptPath);
parentPort.on('message', (job) => {
  const { id, op, password, rounds, hash } = job;
  try {
    const result = op === 'hash' ? bcrypt.hashSync(password, rounds) : bcrypt.compareSync(password, hash);
    parentPort.postMessage({ id, result });
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
`;

type JobRequest = { op: 'hash'; password: string; rounds: number | string } | { op: 'compare'; password: string; hash: string };

interface Job {
  id: number;
  request: JobRequest;
  /** Who asked (a client address for a login attempt), for the pool's fair share; none for other work. */
  lane: string | undefined;
  /** When a thread took the job (`performance.now()`), to learn how long a job takes. */
  startedAt?: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Thread {
  worker: Worker;
  job: Job | null;
  stopping: boolean;
}

export interface BcryptWorkerPoolOptions {
  /** Number of worker threads; default `min(4, availableParallelism())`. */
  size?: number;
  /**
   * Jobs allowed to wait for a thread; default `size × 64`. A job beyond it is refused at once
   * with `PasswordHasherBusy` (a 503 with `Retry-After`) instead of joining a queue that would
   * make every login wait behind a flood of attempts.
   */
  maxQueued?: number;
  /**
   * Jobs of one lane (one client address, for login attempts) allowed to wait; default a quarter
   * of `maxQueued`. One address cannot fill the queue for everybody else.
   */
  maxQueuedPerLane?: number;
  /**
   * Threads one lane may use at once; default half the pool (at least one). The rest stay free
   * for other clients, so a flood from one address does not hold up logins from elsewhere.
   */
  maxRunningPerLane?: number;
}

const lanes = new AsyncLocalStorage<string>();

/**
 * Run `work` with every hash it asks for counted in `lane` (the login throttle passes the
 * client's address), so the pool can share its threads fairly between clients.
 */
export async function runInLane<T>(lane: string, work: () => T | Promise<T>): Promise<T> {
  lanesInUse++;
  try {
    return await lanes.run(lane, work);
  } finally {
    // While a lane is set anywhere, Node tracks the context of every promise of the process;
    // once no login is being checked, that cost is switched off until the next one.
    if (--lanesInUse === 0) lanes.disable();
  }
}

let lanesInUse = 0;

let bcryptPath: string | undefined;

function resolveBcrypt(): string {
  bcryptPath ??= createRequire(import.meta.url).resolve('bcryptjs');
  return bcryptPath;
}

let sharedPool: BcryptWorkerPool | undefined;

/**
 * Runs bcryptjs on a few worker threads. bcrypt costs tens to hundreds of milliseconds of pure
 * JavaScript per call; on the main thread a burst of logins would hold every other request
 * back for that long. Threads start on the first job, and an idle pool does not keep the
 * process alive (idle workers are `unref()`'d), so scripts and test runners exit on their own.
 */
export class BcryptWorkerPool {
  readonly size: number;
  readonly maxQueued: number;
  readonly maxQueuedPerLane: number;
  readonly maxRunningPerLane: number;
  private readonly threads: Thread[] = [];
  private readonly queue: Job[] = [];
  /** Jobs waiting and running, per lane. */
  private readonly waiting = new Map<string, number>();
  private readonly running = new Map<string, number>();
  private nextId = 1;
  private users = 0;
  /** Running average of a job's duration, for the `Retry-After` of a refused job. */
  private averageJobMs = 0;

  constructor(options: BcryptWorkerPoolOptions = {}) {
    this.size = options.size ?? Math.min(4, availableParallelism());
    if (!Number.isInteger(this.size) || this.size < 1) {
      throw new RangeError(`BcryptWorkerPool size must be a positive integer, got ${options.size}.`);
    }
    this.maxQueued = options.maxQueued ?? this.size * 64;
    if (!Number.isInteger(this.maxQueued) || this.maxQueued < 0) {
      throw new RangeError(`BcryptWorkerPool maxQueued must be a non-negative integer, got ${options.maxQueued}.`);
    }
    this.maxQueuedPerLane = options.maxQueuedPerLane ?? Math.max(1, Math.floor(this.maxQueued / 4));
    this.maxRunningPerLane = options.maxRunningPerLane ?? Math.max(1, Math.ceil(this.size / 2));
    for (const [name, value] of [['maxQueuedPerLane', this.maxQueuedPerLane], ['maxRunningPerLane', this.maxRunningPerLane]] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`BcryptWorkerPool ${name} must be a positive integer, got ${value}.`);
      }
    }
  }

  /** The pool the bcrypt hashers share unless given their own. */
  static shared(): BcryptWorkerPool {
    sharedPool ??= new BcryptWorkerPool();
    return sharedPool;
  }

  /** Worker threads currently running. */
  get threadCount(): number {
    return this.threads.length;
  }

  /** Jobs waiting for a thread. */
  get queued(): number {
    return this.queue.length;
  }

  /** bcrypt of `password` at `rounds` with a new salt, or with the given bcrypt salt (`$2b$12$` and 22 characters). */
  hash(password: string, rounds: number | string): Promise<string> {
    return this.run({ op: 'hash', password, rounds }) as Promise<string>;
  }

  compare(password: string, hash: string): Promise<boolean> {
    return this.run({ op: 'compare', password, hash }) as Promise<boolean>;
  }

  /**
   * Note a user of the pool (an application's `PasswordHasher`). Several applications in one
   * process can share a pool; it is closed when the last of them releases it.
   */
  retain(): void {
    this.users++;
  }

  async release(): Promise<void> {
    if (this.users === 0) return;
    this.users--;
    if (this.users === 0) await this.close();
  }

  /**
   * Stop every thread now. Jobs not finished are rejected, never left hanging; a later job
   * starts threads again.
   */
  async close(): Promise<void> {
    const closed = new Error('The bcrypt worker pool was closed before the password was hashed.');
    for (const job of this.queue.splice(0)) job.reject(closed);
    this.waiting.clear();
    this.running.clear();
    const threads = this.threads.splice(0);
    for (const thread of threads) {
      thread.stopping = true;
      thread.job?.reject(closed);
      thread.job = null;
    }
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }

  private run(request: JobRequest): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const lane = lanes.getStore();
      const job: Job = { id: this.nextId++, request, lane, resolve, reject };
      this.queue.push(job);
      count(this.waiting, lane, +1);
      this.dispatch();
      if (!this.queue.includes(job)) return;
      const laneFull = lane !== undefined && (this.waiting.get(lane) ?? 0) > this.maxQueuedPerLane;
      if (this.queue.length > this.maxQueued || laneFull) {
        // No thread took it and the line (or this client's share of it) is full: refuse at
        // once. A refused job costs nothing; a queued one would delay every login after it.
        this.queue.splice(this.queue.indexOf(job), 1);
        count(this.waiting, lane, -1);
        reject(new PasswordHasherBusy(this.retryAfterSeconds()));
      }
    });
  }

  /** About how long until the jobs waiting now have run: a hint for the client, at least 1 s. */
  private retryAfterSeconds(): number {
    const waves = Math.ceil((this.queue.length + this.size) / this.size);
    return Math.max(1, Math.ceil((waves * this.averageJobMs) / 1000));
  }

  /** Give free threads the oldest jobs whose lane is below its share of the threads. */
  private dispatch(): void {
    while (this.queue.length > 0) {
      let thread = this.threads.find((candidate) => candidate.job === null);
      if (!thread) {
        if (this.threads.length >= this.size) return;
        thread = this.spawn();
      }
      const job = this.nextJob();
      if (!job) return;
      this.assign(thread, job);
    }
  }

  private nextJob(): Job | undefined {
    const index = this.queue.findIndex(
      (job) => job.lane === undefined || (this.running.get(job.lane) ?? 0) < this.maxRunningPerLane,
    );
    if (index < 0) return undefined;
    const [job] = this.queue.splice(index, 1);
    count(this.waiting, job.lane, -1);
    return job;
  }

  private assign(thread: Thread, job: Job): void {
    thread.job = job;
    job.startedAt = performance.now();
    count(this.running, job.lane, +1);
    // A thread with work keeps the process alive until the caller gets its answer.
    thread.worker.ref();
    thread.worker.postMessage({ id: job.id, ...job.request });
  }

  private finish(thread: Thread): Job | null {
    const job = thread.job;
    thread.job = null;
    if (job) count(this.running, job.lane, -1);
    return job;
  }

  private spawn(): Thread {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath: resolveBcrypt() } });
    const thread: Thread = { worker, job: null, stopping: false };
    worker.unref();
    worker.on('message', (message: { id: number; result?: unknown; error?: string }) => {
      if (!thread.job || thread.job.id !== message.id) return;
      const job = this.finish(thread)!;
      const took = performance.now() - job.startedAt!;
      this.averageJobMs = this.averageJobMs === 0 ? took : 0.8 * this.averageJobMs + 0.2 * took;
      if (message.error === undefined) job.resolve(message.result);
      else job.reject(new Error(`bcrypt failed: ${message.error}`));
      const next = this.nextJob();
      if (next) this.assign(thread, next);
      else {
        worker.unref();
        // A lane just dropped below its share: its next job may run on another free thread.
        this.dispatch();
      }
    });
    let failure: Error | undefined;
    // Without a listener, a worker's uncaught error would be thrown in the main thread.
    worker.on('error', (error) => {
      failure = error;
    });
    worker.on('exit', (code) => {
      if (thread.stopping) return;
      // The thread died on its own: fail its job rather than leave the caller waiting, and let
      // the next job start a replacement.
      const index = this.threads.indexOf(thread);
      if (index >= 0) this.threads.splice(index, 1);
      const job = this.finish(thread);
      job?.reject(
        new Error(`The bcrypt worker thread stopped (exit code ${code})${failure ? `: ${failure.message}` : ''}.`),
      );
      this.dispatch();
    });
    this.threads.push(thread);
    return thread;
  }
}

function count(counts: Map<string, number>, lane: string | undefined, by: number): void {
  if (lane === undefined) return;
  const value = (counts.get(lane) ?? 0) + by;
  if (value > 0) counts.set(lane, value);
  else counts.delete(lane);
}
