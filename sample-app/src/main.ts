import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { configFromEnv } from './config.js';
import { seed } from './seed.js';

const config = configFromEnv();
const app = await NestFactory.create(AppModule.forRoot(config));
await seed(app, config);
await app.listen(config.port);

const accounts = config.demo
  ? 'demo accounts on the home page'
  : 'no demo accounts in production: `npm run createsuperuser` makes the first account';
new Logger('Sample').log(`Sample site ready: open http://localhost:${config.port}/ (${accounts})`);
