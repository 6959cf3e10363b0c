// The smoke suite in an ES module app: every module through `import`, as such an app loads them.
import 'reflect-metadata';
import * as common from '@nestjs/common';
import * as core from '@nestjs/core';
import * as typeormModule from '@nestjs/typeorm';
import * as typeorm from 'typeorm';
import request from 'supertest';
import * as lib from 'nestjs-session-auth';
import * as passwords from 'nestjs-session-auth/passwords';
import * as views from 'nestjs-session-auth/views';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
// From the file: not every package exports its package.json.
const version = (name) => JSON.parse(readFileSync(join('node_modules', name, 'package.json'), 'utf8')).version;
const runSmoke = require('./suite.cjs');
const sqliteType = process.env.SMOKE_SQLITE_TYPE ?? 'better-sqlite3';
const onFastify = process.env.SMOKE_PLATFORM === 'fastify';
if (onFastify) {
  // The app installed no Express, and the library pulled none in.
  for (const name of ['express', '@nestjs/platform-express']) {
    let found = true;
    try {
      require.resolve(name);
    } catch {
      found = false;
    }
    if (found) throw new Error(`${name} is installed in a Fastify app that did not ask for it`);
  }
}
const createAdapter = onFastify ? async () => new (await import('@nestjs/platform-fastify')).FastifyAdapter() : undefined;
await runSmoke({
  createAdapter,
  common,
  core,
  typeormModule,
  typeorm,
  request,
  lib,
  passwords,
  views,
  sqliteType,
  packageDir: dirname(require.resolve('nestjs-session-auth/package.json')),
  label: `ES module app, Nest ${version('@nestjs/core')} on ${onFastify ? `Fastify ${version('fastify')}` : 'Express'}, TypeORM ${version('typeorm')}, ${sqliteType}`,
});
