import { slapdInstalled } from '../../sample-app/src/ldap/slapd.js';
/**
 * External services some suites run against. Each URL comes from the environment; when it is not
 * set, the suites that need it are listed as skipped (`describeIf`, `describeEach`) and that is said
 * once, loudly, so a green run without the services cannot pass for a full one: the closing summary
 * counts them. `.ci/run` sets every URL and fails if any test was skipped.
 */
const reported = new Set<string>();

function fromEnv(variable: string, what: string): string | undefined {
  const value = process.env[variable]?.trim();
  if (value) return value;
  if (!reported.has(variable)) {
    reported.add(variable);
    console.warn(
      `${what} tests NOT RUN: ${variable} is not set (e.g. ${variable}=${EXAMPLES[variable]}). ` +
        '.ci/run sets it; set it locally to run them.',
    );
  }
  return undefined;
}

const EXAMPLES: Record<string, string> = {
  TEST_POSTGRES_URL: 'postgres://postgres@127.0.0.1:5432/test',
  TEST_REDIS_URL: 'redis://127.0.0.1:6379',
  TEST_MYSQL_URL: 'mysql://root@127.0.0.1:3306/test',
};

/** The PostgreSQL URL to test against, or undefined (reported once) when none is configured. */
export function postgresUrl(): string | undefined {
  return fromEnv('TEST_POSTGRES_URL', 'PostgreSQL');
}

/** The Redis URL to test against, or undefined (reported once) when none is configured. */
export function redisUrl(): string | undefined {
  return fromEnv('TEST_REDIS_URL', 'Redis');
}

/** The MySQL/MariaDB URL to test against, or undefined (reported once) when none is configured. */
export function mysqlUrl(): string | undefined {
  return fromEnv('TEST_MYSQL_URL', 'MySQL/MariaDB');
}

/**
 * `describe` for a suite that needs a service (or a program) that may be missing here:
 * `describe.skip` when it is, so its tests are listed and counted as skipped, never silently absent.
 */
export function describeIf(available: unknown): typeof describe {
  return available ? describe : describe.skip;
}

/** `describe.each` over cases (`name`, `available`) some of which need a missing service: those are skipped. */
export function describeEach<T extends { name: string; available?: boolean }>(
  cases: T[],
  title: (each: T) => string,
  body: (each: T) => void,
): void {
  for (const each of cases) describeIf(each.available !== false)(title(each), () => body(each));
}

/** A name no other run (or concurrent Jest worker) uses: for schemas, key prefixes, … */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Whether Debian's `slapd` and `ldap-utils` are installed, for the suites that start their own
 * OpenLDAP server; said once, loudly, when they are not (`.ci/run` installs them).
 */
export function slapdAvailable(): boolean {
  const installed = slapdInstalled();
  if (!installed && !reported.has('slapd')) {
    reported.add('slapd');
    console.warn(
      'LDAP tests NOT RUN: Debian\'s slapd, ldap-utils and openssl are not installed ' +
        '(DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils openssl). .ci/run installs them.',
    );
  }
  return installed;
}
