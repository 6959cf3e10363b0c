// Fails loudly when a service the tests need is unreachable, instead of letting them skip.
import mysql from 'mysql2/promise';
import pg from 'pg';
import { createClient } from 'redis';

const failures = [];

const postgres = new pg.Client({ connectionString: process.env.TEST_POSTGRES_URL, connectionTimeoutMillis: 5000 });
try {
  await postgres.connect();
  const { rows } = await postgres.query('select version()');
  console.log(`PostgreSQL ok: ${rows[0].version.split(',')[0]}`);
} catch (error) {
  failures.push(`PostgreSQL at ${process.env.TEST_POSTGRES_URL}: ${error.message}`);
} finally {
  await postgres.end().catch(() => {});
}

const redis = createClient({ url: process.env.TEST_REDIS_URL, socket: { connectTimeout: 5000, reconnectStrategy: false } });
redis.on('error', () => {});
try {
  await redis.connect();
  console.log(`Redis ok: ${await redis.ping()}`);
} catch (error) {
  failures.push(`Redis at ${process.env.TEST_REDIS_URL}: ${error.message}`);
} finally {
  if (redis.isOpen) await redis.quit();
}

try {
  const connection = await mysql.createConnection({ uri: process.env.TEST_MYSQL_URL, connectTimeout: 5000 });
  try {
    const [rows] = await connection.query('select version() as version');
    console.log(`MySQL/MariaDB ok: ${rows[0].version}`);
  } finally {
    await connection.end();
  }
} catch (error) {
  failures.push(`MySQL/MariaDB at ${process.env.TEST_MYSQL_URL}: ${error.message}`);
}

if (failures.length > 0) {
  console.error(`Required services are unreachable:\n  ${failures.join('\n  ')}`);
  console.error('See the README (Running the tests) for how to start them.');
  process.exit(1);
}
