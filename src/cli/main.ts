#!/usr/bin/env node
// Decorator metadata must be readable before the library's classes are evaluated.
import 'reflect-metadata';

// The CLI runs on the app's own @nestjs/core, @nestjs/typeorm, typeorm and database driver.
try {
  const { runCli } = await import('./cli.program.js');
  process.exitCode = await runCli(process.argv.slice(2));
} catch (error) {
  const { code, message } = error as NodeJS.ErrnoException;
  if (code !== 'ERR_MODULE_NOT_FOUND') throw error;
  process.stderr.write(`Error: ${message.split('\n')[0]}\nInstall it in your app (npm install <package>); the CLI uses the app's packages.\n`);
  process.exitCode = 1;
}
