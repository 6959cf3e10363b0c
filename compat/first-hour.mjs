// A newcomer's first hour, run: the README's Quick start, word for word, in the projects `nest new`
// writes (compat/nest-new-cjs: Nest 11, CommonJS; compat/nest-new-esm: Nest 12, ES modules), with
// the library packed from this checkout. For each: the README's install line, `init` (twice: the
// second run must change nothing), the build, `createsuperuser --create-schema` before the first
// start, `npm run start`, a login through the built-in login page, the app's own e2e test and
// (ES module project) the compat smoke suite on the app's packages; then the by-hand version (the
// README's app.module.ts and main.ts, its commands, its JSON login).
// It installs from the npm registry into temporary folders (a few minutes; not part of `npm test`).
//
// Usage: node compat/first-hour.mjs [cjs] [esm]   (both by default; KEEP=1 keeps the folders)
// Under another Node: bash compat/with-node.sh 26 node compat/first-hour.mjs esm
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const variants = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['cjs', 'esm'];
const SUPERUSER = { username: 'admin', email: 'admin@example.com', password: 'Quick-Start-Pass-42' };
const started = Date.now();

/** The README's fenced blocks marked `<!-- first-hour: name -->` (bash) or named by `<!-- file: path -->`. */
function readmeBlocks() {
  const lines = readFileSync(join(root, 'README.md'), 'utf8').split('\n');
  const blocks = { steps: {}, files: {} };
  for (let i = 0; i < lines.length; i++) {
    const marker = /^<!-- (first-hour|file): (\S+) -->$/.exec(lines[i]);
    if (!marker) continue;
    let j = i + 1;
    while (/^<!-- .* -->$/.test(lines[j])) j++;
    if (!lines[j].startsWith('```')) throw new Error(`README.md:${i + 1}: the marker is not followed by a code block`);
    const end = lines.indexOf('```', j + 1);
    const body = lines.slice(j + 1, end).join('\n') + '\n';
    if (marker[1] === 'first-hour') blocks.steps[marker[2]] = body.trim().split('\n');
    else blocks.files[marker[2]] = body;
  }
  for (const name of ['init', 'by-hand']) if (!blocks.steps[name]) throw new Error(`README.md has no <!-- first-hour: ${name} --> block`);
  for (const file of ['src/app.module.ts', 'src/main.ts']) if (!blocks.files[file]) throw new Error(`README.md has no <!-- file: ${file} --> block`);
  return blocks;
}

function step(title) {
  console.log(`== [${Math.round((Date.now() - started) / 1000)} s] ${title}`);
}

/** Run a shell line in the app; its output is shown, a failure ends the run. */
function sh(cwd, line, env = {}) {
  console.log(`$ ${line}`);
  return execFileSync('bash', ['-c', line], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
}

/**
 * The README's install line, with better-sqlite3 12's native module (what npm picks on Node 20)
 * built once per Node ABI and kept (NATIVE_CACHE, default in the temporary folder): its prebuilt
 * binaries are downloaded from GitHub, which is not reachable from here, and compiling it takes a
 * minute and a half. Install scripts are skipped for that; none of the others is needed.
 */
function install(app, line) {
  const start = Date.now();
  sh(app, `${line} --ignore-scripts --no-audit --no-fund --loglevel=error`);
  const dir = join(app, 'node_modules', 'better-sqlite3');
  const { version, scripts } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  if (!scripts?.install) {
    // better-sqlite3 13 (Node ≥ 22, which npm picks there) ships its binaries: nothing to build.
    console.log(`   installed in ${Math.round((Date.now() - start) / 1000)} s (better-sqlite3 ${version}, prebuilt)`);
    return;
  }
  const cache = process.env.NATIVE_CACHE ?? join(tmpdir(), 'nestjs-session-auth-native-cache');
  const cached = join(cache, `better-sqlite3-${version}-abi${process.versions.modules}-${process.platform}-${process.arch}.node`);
  const built = join(dir, 'build', 'Release', 'better_sqlite3.node');
  if (!existsSync(cached)) seedFromCheckout(version, cached);
  if (existsSync(cached)) {
    mkdirSync(dirname(built), { recursive: true });
    copyFileSync(cached, built);
  } else {
    sh(app, 'npm rebuild better-sqlite3 --loglevel=error');
    mkdirSync(cache, { recursive: true });
    copyFileSync(built, cached);
  }
  console.log(`   installed in ${Math.round((Date.now() - start) / 1000)} s`);
}

/** The checkout's own better-sqlite3 build, when it is the same version and loads in this Node. */
function seedFromCheckout(version, cached) {
  const dir = join(root, 'node_modules', 'better-sqlite3');
  try {
    if (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version !== version) return;
    const Database = createRequire(join(root, 'package.json'))('better-sqlite3');
    new Database(':memory:').close();
    mkdirSync(dirname(cached), { recursive: true });
    copyFileSync(join(dir, 'build', 'Release', 'better_sqlite3.node'), cached);
  } catch {
    // another version, or built for another Node: build it
  }
}

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Start a server line in the background; resolves once `path` answers, with a stop function. */
async function serve(cwd, line, env, port, path) {
  console.log(`$ ${line} &   (PORT=${port})`);
  const child = spawn('bash', ['-c', line], { cwd, env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  const stop = () => {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${line} exited with ${child.exitCode}`);
    try {
      await fetch(`http://127.0.0.1:${port}${path}`);
      return stop;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  stop();
  throw new Error(`${line} did not answer on port ${port} within two minutes`);
}

function expect(condition, what) {
  if (!condition) throw new Error(`expected ${what}`);
  console.log(`   ok: ${what}`);
}

const cookiesOf = (response) => response.headers.getSetCookie().map((cookie) => cookie.split(';')[0]);

/** The built-in login page, as a browser uses it: the form's CSRF token, then the form posted. */
async function logInThroughTheLoginPage(port) {
  const base = `http://127.0.0.1:${port}`;
  const anonymous = await fetch(`${base}/accounts/password_change`, { redirect: 'manual', headers: { accept: 'text/html' } });
  expect(anonymous.status === 302 && anonymous.headers.get('location').startsWith('/accounts/login?next='), 'a protected built-in page sends a visitor to the login page');
  const page = await fetch(`${base}/accounts/login`, { headers: { accept: 'application/json' } });
  const { csrfToken } = await page.json();
  const form = new URLSearchParams({ username: SUPERUSER.username, password: SUPERUSER.password, csrfmiddlewaretoken: csrfToken });
  const login = await fetch(`${base}/accounts/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookiesOf(page).join('; ') },
    body: form,
  });
  const session = cookiesOf(login).find((cookie) => cookie.startsWith('sessionid='));
  expect(login.status === 302 && session, 'the superuser logs in through the built-in login page (302 and a session cookie)');
  const inside = await fetch(`${base}/accounts/password_change`, { headers: { cookie: session, accept: 'text/html' }, redirect: 'manual' });
  expect(inside.status === 200, 'the logged-in superuser opens the password change page');
}

/** The by-hand app's own JSON login route, as the README's curl line calls it. */
async function logInThroughTheJsonRoute(port) {
  const base = `http://127.0.0.1:${port}`;
  const login = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: SUPERUSER.username, password: SUPERUSER.password }),
  });
  const session = cookiesOf(login).find((cookie) => cookie.startsWith('sessionid='));
  expect(login.status === 201 && session, 'POST /login answers 201 with a session cookie');
  const me = await fetch(`${base}/me`, { headers: { cookie: session } });
  expect(me.status === 200 && (await me.json()).username === SUPERUSER.username, 'GET /me knows the user');
  const browser = await fetch(`${base}/me`, { redirect: 'manual', headers: { accept: 'text/html' } });
  expect(browser.status === 302 && browser.headers.get('location') === '/accounts/login?next=%2Fme', 'a browser without a session is sent to the login page');
}

/** Run the README's lines; the ones that start a server or call it are the script's to run its way. */
async function follow(app, lines, tarball, login) {
  const superuserEnv = {
    NESTJS_SESSION_AUTH_SUPERUSER_USERNAME: SUPERUSER.username,
    NESTJS_SESSION_AUTH_SUPERUSER_EMAIL: SUPERUSER.email,
    NESTJS_SESSION_AUTH_SUPERUSER_PASSWORD: SUPERUSER.password,
  };
  let stop;
  try {
    for (const raw of lines) {
      const line = raw.replace(/\s+#.*$/, '').trim();
      if (line.startsWith('npm install ')) {
        step('the install line');
        install(app, line.replace(/(^| )nestjs-session-auth( |$)/, `$1${tarball}$2`));
      } else if (line === 'npx nestjs-session-auth init') {
        step('init, twice');
        const first = sh(app, line);
        console.log(first);
        expect(first.includes('Changed src/app.module.ts:') && !first.includes('Still to install'), 'init wires the module and finds every package installed');
        const second = sh(app, line);
        expect(second.includes('Nothing to change'), 'a second init changes nothing');
      } else if (line === 'npm run build') {
        step('build');
        sh(app, line);
      } else if (/createsuperuser/.test(line)) {
        step('the first account, before the first start');
        // The same command, answered from the environment instead of the prompts.
        console.log(sh(app, `${line} --noinput`, superuserEnv));
      } else if (line === 'npm run start' || /node dist\/main\.js$/.test(line)) {
        step('start');
        const port = await freePort();
        stop = await serve(app, line, {}, port, '/accounts/login');
        await login(port);
      } else if (line.startsWith('curl ')) {
        // login() above made this request.
      } else {
        throw new Error(`The Quick start has a line this script does not know how to run: ${raw}`);
      }
    }
  } finally {
    stop?.();
  }
}

const blocks = readmeBlocks();
step('build and pack the library');
execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
const pack = mkdtempSync(join(tmpdir(), 'nestjs-session-auth-pack-'));
const tarball = join(pack, execFileSync('npm', ['pack', '--silent', '--pack-destination', pack], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop());
console.log(`node ${process.version}, ${tarball}`);

try {
  for (const variant of variants) {
    const fixture = join(root, 'compat', `nest-new-${variant}`);
    const app = mkdtempSync(join(tmpdir(), `nestjs-session-auth-first-hour-${variant}-`));
    step(`${variant}: a copy of what nest new writes, in ${app}`);
    cpSync(fixture, app, { recursive: true });
    await follow(app, blocks.steps.init, tarball, logInThroughTheLoginPage);
    if (variant === 'esm') {
      step(`${variant}: the app's own e2e test (Vitest), with AuthModule in its AppModule`);
      console.log(sh(app, 'npm run test:e2e'));
      // The compat apps' smoke suite on this app's packages (under another Node, on what npm picked for it).
      step(`${variant}: the compat smoke suite (compat/smoke) in this app`);
      cpSync(join(root, 'compat', 'smoke'), app, { recursive: true });
      const smoke = sh(app, 'node entry.mjs');
      console.log(smoke);
      expect(smoke.includes('all checks passed.'), 'the smoke suite passes');
    } else {
      // Jest in a CommonJS project require()s every package, and cannot load ES module ones
      // (this one, @nestjs/typeorm 12, TypeORM 1) before Node 24.9 (README, Quick start).
      step(`${variant}: the app's own Jest e2e test is not run (Jest cannot require() ES module packages here)`);
    }

    step(`${variant}: by hand`);
    rmSync(join(app, 'db.sqlite'));
    for (const [file, text] of Object.entries(blocks.files)) writeFileSync(join(app, file), text);
    await follow(app, blocks.steps['by-hand'], tarball, logInThroughTheJsonRoute);
    if (process.env.KEEP === '1') console.log(`(kept ${app})`);
    else rmSync(app, { recursive: true, force: true });
  }
} finally {
  rmSync(pack, { recursive: true, force: true });
}
step(`done: ${variants.join(', ')} on node ${process.version}`);
