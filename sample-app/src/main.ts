import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { configFromEnv } from './config.js';
import { seedDemoData } from './seed.js';

const config = configFromEnv();
const app = await NestFactory.create(AppModule.forRoot(config));
await seedDemoData(app);
await app.listen(config.port);

new Logger('Sample').log(`Sample site ready: open http://localhost:${config.port}/ (demo accounts on the home page)`);
