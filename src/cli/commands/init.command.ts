import type { Command } from 'commander';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import type * as TS from 'typescript';
import { CommandError } from '../cli.errors.js';
import { editAppModule, LOAD_ENV } from '../init/app-module.edit.js';
import { envFile, gitignoreFile, loadEnvFile, type FileChange } from '../init/project-files.js';
import type { CommandContext } from './command.context.js';

/**
 * `init`: wire the module into an existing Nest app (one made by `nest new`, CommonJS or ES
 * modules): `AuthModule` with `ModelBackend` and the built-in views, `authEntities` in TypeORM's
 * entities (a SQLite connection if the app has none), a random `SESSION_SECRET` in `.env`, loaded
 * by a small `load-env.ts` the app module imports first, and `.env` in `.gitignore`. Running it
 * again changes nothing and says so; anything it does not recognise is refused before a file is
 * written. It installs nothing: it lists the packages the app still needs.
 */
export function registerInit(program: Command, context: CommandContext): void {
  program
    .command('init')
    .description('Wire AuthModule, authEntities, a SESSION_SECRET in .env and the built-in views into this Nest app.')
    .option('--module <path>', "the app's root module (default: app.module.ts in nest-cli.json's sourceRoot, else src/)")
    .action(async (options: { module?: string }) => {
      const { cwd } = context.io;
      const say = (line: string) => context.prompter.say(line);
      if (!existsSync(join(cwd, 'package.json'))) throw new CommandError(`No package.json in ${cwd}: run init in your Nest app's folder.`);
      const modulePath = resolve(cwd, options.module ?? join(sourceRoot(cwd), 'app.module.ts'));
      if (!existsSync(modulePath)) {
        throw new CommandError(`${relative(cwd, modulePath)} not found: pass --module with the path of your app's root module.`);
      }

      const edit = editAppModule(loadTypeScript(cwd), relative(cwd, modulePath), readFileSync(modulePath, 'utf8'));
      const changes: FileChange[] = [];
      const present: string[] = [...edit.present];
      if (edit.text) changes.push({ path: modulePath, text: edit.text, added: edit.added });
      const planned: [string, FileChange | 'present'][] = [
        [`${LOAD_ENV}.ts`, loadEnvFile(join(dirname(modulePath), `${LOAD_ENV}.ts`))],
        ['SESSION_SECRET in .env', envFile(join(cwd, '.env'))],
        ['.env in .gitignore', gitignoreFile(join(cwd, '.gitignore'), ['.env', ...(edit.sqlite ? ['db.sqlite'] : [])])],
      ];
      for (const [what, change] of planned) {
        if (change === 'present') present.push(what);
        else changes.push(change);
      }

      // Everything was planned (and nothing refused) before the first write.
      for (const change of changes) {
        const existed = existsSync(change.path);
        writeFileSync(change.path, change.text);
        if (change.private && !existed) chmodSync(change.path, 0o600);
        say(`${existed ? 'Changed' : 'Created'} ${relative(cwd, change.path)}:`);
        for (const line of change.added) say(`  + ${line}`);
      }
      if (changes.length === 0) say('Nothing to change: this app is already wired.');
      if (present.length > 0) say(`Already there: ${present.join('; ')}.`);

      const missing = missingPackages(cwd, edit.sqlite);
      if (missing.length > 0) say(`Still to install: npm install ${missing.join(' ')}`);
      if (changes.length > 0) {
        say('Next: npm run build, then create a first account and start the app:');
        say('  DATABASE_URL=db.sqlite npx nestjs-session-auth createsuperuser --create-schema');
        say('  npm run start   # http://localhost:3000/accounts/login');
      }
    });
}

/** Where `nest new` keeps the sources (`sourceRoot` in nest-cli.json), else `src`. */
function sourceRoot(cwd: string): string {
  try {
    const config = JSON.parse(readFileSync(join(cwd, 'nest-cli.json'), 'utf8')) as { sourceRoot?: unknown };
    if (typeof config.sourceRoot === 'string' && config.sourceRoot) return config.sourceRoot;
  } catch {
    // no nest-cli.json, or not JSON: the default layout
  }
  return 'src';
}

/** The app's own TypeScript compiler (every Nest app has one), else one this package can reach. */
function loadTypeScript(cwd: string): typeof TS {
  for (const base of [join(cwd, 'package.json'), import.meta.url]) {
    try {
      return createRequire(base)('typescript') as typeof TS;
    } catch {
      // not installed there
    }
  }
  throw new CommandError('init reads your module with the TypeScript compiler, which is not installed here: npm install -D typescript.');
}

/** The packages the wired app loads that its package.json does not list. */
function missingPackages(cwd: string, sqlite: boolean): string[] {
  const manifest = JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
  const listed = { ...manifest.dependencies, ...manifest.devDependencies };
  const wanted = ['nestjs-session-auth', '@nestjs/typeorm', 'typeorm', ...(sqlite ? ['better-sqlite3'] : []), 'express-session'];
  return wanted.filter((name) => !listed[name]);
}
