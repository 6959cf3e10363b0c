import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { CommandError } from '../cli.errors.js';

/** A file `init` writes, and what the report says about it. */
export interface FileChange {
  path: string;
  text: string;
  /** Created with owner-only permissions (it holds a secret). */
  private?: boolean;
  added: string[];
}

/**
 * The module the app module imports first: Node's own `.env` loader (no dotenv), before the
 * options of `AuthModule.forRoot()` are evaluated, which happens when the app module is imported
 * (by `main.ts`, or by a test). Variables already in the environment win, as with `node
 * --env-file`; without a `.env` (production) nothing is loaded.
 */
export const LOAD_ENV_SOURCE = `// Written by \`npx nestjs-session-auth init\`. Loads .env (SESSION_SECRET, …) into process.env
// before app.module.ts builds its options, which it does as soon as it is imported. Variables
// already set in the environment win; without a .env file (production) nothing is loaded.
import { existsSync } from 'node:fs';

if (existsSync('.env')) process.loadEnvFile('.env');
`;

/** `load-env.ts` beside the app module: written once, never overwritten. */
export function loadEnvFile(path: string): FileChange | 'present' {
  if (!existsSync(path)) return { path, text: LOAD_ENV_SOURCE, added: ['loads .env before the app module is evaluated'] };
  if (readFileSync(path, 'utf8').includes("process.loadEnvFile('.env')")) return 'present';
  throw new CommandError(`${path} exists and is not the file init writes; rename it, or load .env there yourself. Nothing was changed.`);
}

/** `SESSION_SECRET` in `.env`: 32 random bytes, added when the variable is not there yet. */
export function envFile(path: string): FileChange | 'present' {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  if (/^\s*(?:export\s+)?SESSION_SECRET\s*=/m.test(text)) return 'present';
  const line = `SESSION_SECRET=${randomBytes(32).toString('hex')}\n`;
  return {
    path,
    text: text === '' ? line : `${text}${text.endsWith('\n') ? '' : '\n'}${line}`,
    private: text === '',
    added: ['SESSION_SECRET (random, 64 hex digits): keep it out of version control'],
  };
}

/** `.env` (and the SQLite file, when init wired one) in `.gitignore`, created if need be. */
export function gitignoreFile(path: string, names: string[]): FileChange | 'present' {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const patterns = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#') && !line.startsWith('!'));
  const missing = names.filter((name) => !patterns.some((pattern) => ignores(pattern, name)));
  if (missing.length === 0) return 'present';
  const lines = missing.join('\n');
  return {
    path,
    text: text === '' ? `${lines}\n` : `${text}${text.endsWith('\n') ? '' : '\n'}${lines}\n`,
    added: missing.map((name) => `${name} ignored`),
  };
}

/** A `.gitignore` line's match of a file at the project root (`*` only; enough for `.env`, `*.sqlite`). */
function ignores(pattern: string, name: string): boolean {
  const glob = pattern.replace(/^\//, '').replace(/\/$/, '');
  const regex = new RegExp(`^${glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
  return regex.test(name);
}
