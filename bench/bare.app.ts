/**
 * The baseline of the benchmark: the same routes on a bare Nest app, with no sessions and no
 * users. What every other app costs is read against it.
 */
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { serve } from './app-process.js';

@Controller()
class BenchController {
  @Get('public')
  public() {
    return { hello: 'world' };
  }

  @Get('health')
  health() {
    return { up: true };
  }

  @Get('me')
  me() {
    return { id: 1, username: 'bench' };
  }
}

await serve(async () => {
  @Module({ controllers: [BenchController] })
  class BareModule {}
  const app = await NestFactory.create(BareModule, { logger: ['error', 'warn'] });
  return { app, rowsWritten: () => 0 };
});
