import { NestFactory } from '@nestjs/core';
import { UserManager } from 'nestjs-session-auth';
import { AppModule } from './app.module.js';
import { configFromEnv } from './config.js';
import { TerminalQuestions } from './prompt.js';
import { createSuperuser } from './superuser.js';

/**
 * `npm run createsuperuser`: creates a superuser in the database the app uses (the same
 * `DATABASE_URL`, or `data/db.sqlite`), asking on the terminal; the password is never echoed.
 */
const config = configFromEnv(process.env, () => {});
const app = await NestFactory.createApplicationContext(AppModule.forRoot(config), { logger: ['error', 'warn'] });
const questions = new TerminalQuestions();
try {
  const user = await createSuperuser(app.get(UserManager), questions);
  console.log(`Superuser ${user.username} created. Log in at http://localhost:${config.port}/login`);
} catch (error) {
  console.error(`No superuser created: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  questions.close();
  await app.close();
}
