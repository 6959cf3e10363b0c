import { readdirSync, readFileSync } from 'node:fs';
import * as root from 'nestjs-session-auth';
import * as csrf from 'nestjs-session-auth/csrf';
import * as messages from 'nestjs-session-auth/messages';
import * as passwords from 'nestjs-session-auth/passwords';
import * as throttle from 'nestjs-session-auth/throttle';
import * as views from 'nestjs-session-auth/views';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

describe('the package surface', () => {
  it('exports the workflow from the root', () => {
    for (const name of [
      'AuthModule', 'AuthService', 'LoginRequired', 'PermissionRequired', 'CurrentUser', 'ModelBackend', 'User',
      'authEntities', 'TypeOrmSessionStore', 'RedisSessionStore', 'UserManager', 'PermissionManager',
      'PermissionDenied', 'RetryLater', 'SameOriginGuard', 'loadSession', 'sessionOf',
    ]) {
      expect(root).toHaveProperty(name);
    }
  });

  it('keeps what the module uses internally out of the root, so an app cannot come to depend on it', () => {
    for (const name of [
      // Its session layer, backend registry and options token: an app configures them through forRoot().
      'SessionHandler', 'BackendRegistry', 'AUTH_OPTIONS',
      // One route to permissions: AuthService.hasPerm() and its siblings.
      'PermissionChecker',
      // What ModelBackend, PermissionManager and the session keep to themselves.
      'clearPermissionCache', 'checkPermissionName', 'SESSION_KEY', 'BACKEND_SESSION_KEY', 'HASH_SESSION_KEY',
    ]) {
      expect(root).not.toHaveProperty(name);
    }
  });

  it('keeps what the module registers itself, and the subpaths\' content, out of the root', () => {
    for (const name of ['AccessGuard', 'SessionMiddleware', 'LoginThrottle', 'BCryptSHA256Hasher', 'csrfToken', 'messages', 'AuthMailer', 'RedisLockoutStore']) {
      expect(root).not.toHaveProperty(name);
    }
  });

  it('serves the rest from subpaths', () => {
    expect(passwords).toHaveProperty('BCryptSHA256Hasher');
    expect(passwords).toHaveProperty('PasswordResetTokens');
    expect(throttle).toHaveProperty('RedisLockoutStore');
    expect(throttle).toHaveProperty('TooManyLoginAttempts');
    expect(csrf).toHaveProperty('csrfToken');
    expect(messages).toHaveProperty('messages');
    expect(views).toHaveProperty('AuthMailer');
  });

  it('maps every entry file to an export (ES modules, CommonJS and types) and a typesVersions path', () => {
    const entries = readdirSync(new URL('../src/entries/', import.meta.url)).map((file) => file.replace(/\.ts$/, ''));
    expect(entries.sort()).toEqual(['csrf', 'ldap', 'mailers', 'messages', 'oidc', 'passwords', 'throttle', 'views', 'websockets']);
    for (const entry of entries) {
      expect(pkg.exports[`./${entry}`]).toEqual({
        types: `./dist/entries/${entry}.d.ts`,
        import: `./dist/entries/${entry}.js`,
        default: `./dist/entries/${entry}.js`,
      });
      expect(pkg.typesVersions['*'][entry]).toEqual([`./dist/entries/${entry}.d.ts`]);
    }
  });
});
