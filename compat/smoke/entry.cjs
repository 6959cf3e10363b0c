// The smoke suite in a CommonJS app: every module through `require`, as such an app loads them
// (nestjs-session-auth is an ES module package; Node ≥ 20.19 loads it with require()).
'use strict';
require('reflect-metadata');
const { readFileSync } = require('node:fs');
const { dirname, join } = require('node:path');

// From the file: not every package exports its package.json.
const version = (name) => JSON.parse(readFileSync(join('node_modules', name, 'package.json'), 'utf8')).version;
const runSmoke = require('./suite.cjs');
const sqliteType = process.env.SMOKE_SQLITE_TYPE ?? 'sqlite';
runSmoke({
  common: require('@nestjs/common'),
  core: require('@nestjs/core'),
  typeormModule: require('@nestjs/typeorm'),
  typeorm: require('typeorm'),
  request: require('supertest'),
  lib: require('nestjs-session-auth'),
  passwords: require('nestjs-session-auth/passwords'),
  views: require('nestjs-session-auth/views'),
  sqliteType,
  packageDir: dirname(require.resolve('nestjs-session-auth/package.json')),
  label: `CommonJS app, Nest ${version('@nestjs/core')}, TypeORM ${version('typeorm')}, ${sqliteType}`,
}).catch((error) => {
  console.error(error);
  process.exit(1);
});
