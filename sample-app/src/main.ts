import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { UserManager } from 'nestjs-session-auth';
import { AppModule } from './app.module.js';
import { configFromEnv } from './config.js';
import { seedDemoUsers } from './seed.js';

const config = configFromEnv();
const app = await NestFactory.create(AppModule.forRoot(config));
await seedDemoUsers(app.get(UserManager));
await app.listen(config.port);

new Logger('Sample').log(`Listening on http://localhost:${config.port}`);
