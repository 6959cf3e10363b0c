import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { configFromEnv } from './config.js';
import { seed } from './seed.js';
import { startDemoIdentityProvider } from './oidc/demo-idp.js';

const config = configFromEnv();
if (config.demo && !config.identityProvider) {
  // "Log in with the demo provider": an OpenID Connect provider of its own, in this process.
  const origins = [`http://localhost:${config.port}`, `http://127.0.0.1:${config.port}`];
  const { provider, options } = await startDemoIdentityProvider(origins, Number(process.env.IDP_PORT ?? config.port + 1));
  config.identityProvider = options;
  new Logger('Sample').log(`Demo identity provider at ${provider.issuer} (IDP_URL points the site at another)`);
}
const app = await NestFactory.create(AppModule.forRoot(config));
await seed(app, config);
await app.listen(config.port);

const accounts = config.demo
  ? 'demo accounts on the home page'
  : 'no demo accounts in production: `npm run createsuperuser` makes the first account';
new Logger('Sample').log(`Sample site ready: open http://localhost:${config.port}/ (${accounts})`);
