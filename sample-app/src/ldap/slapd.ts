import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway OpenLDAP server: Debian's `slapd` on a loopback port, from a temporary config and
 * database, its entries loaded over LDAP (so the memberOf overlay sees them). `npm run ldap`
 * starts one with the sample's directory; the tests start their own. Never the system's slapd.
 */

export interface SlapdSettings {
  /** `dc=example,dc=com`. */
  suffix: string;
  adminDn: string;
  adminPassword: string;
  /** A read-only account for searches; may read everything but passwords. */
  serviceDn: string;
  /**
   * The entries, as LDIF (the suffix entry first). They may set `entryUUID`, as a directory
   * that has been running for years holds it: the same on every start.
   */
  ldif: string;
  /**
   * What clients that have not bound may do with entries: `none` (default: they cannot even
   * tell whether one exists) or `auth`: they may bind, and reading an entry is answered
   * "insufficient access", as many company directories answer.
   */
  anonymous?: 'none' | 'auth';
  /** The port of `ldap://` (default: a free one). */
  port?: number;
  /**
   * Also serve `ldaps://` and StartTLS, with a certificate authority made for the run; and refuse
   * every operation not protected by TLS (`security tls=1`), so a client that falls back to
   * plain LDAP is caught.
   */
  tls?: boolean;
}

/** Whether Debian's slapd, ldap-utils and openssl are installed here. */
export function slapdInstalled(): boolean {
  return ['/usr/sbin/slapd', 'ldapadd', 'ldapmodify', 'openssl'].every((program) => spawnSync('sh', ['-c', `command -v ${program}`]).status === 0);
}

function config(dir: string, settings: SlapdSettings): string {
  const certificates = settings.tls
    ? `TLSCACertificateFile ${dir}/ca.pem
TLSCertificateFile ${dir}/server.pem
TLSCertificateKeyFile ${dir}/server.key
security tls=1
`
    : '';
  return `${certificates}include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args

database mdb
maxsize 10485760
suffix "${settings.suffix}"
rootdn "${settings.adminDn}"
rootpw ${settings.adminPassword}
directory ${dir}/db

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to *
  by dn.exact="${settings.serviceDn}" read
  by users read
${settings.anonymous === 'auth' ? '  by anonymous auth\n' : ''}  by * none
`;
}

/** A certificate authority and a certificate for 127.0.0.1 and localhost, made with openssl in `dir`. */
function makeCertificates(dir: string): void {
  const run = (args: string[]) => {
    const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr}`);
  };
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Test LDAP CA', '-keyout', 'ca.key', '-out', 'ca.pem']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr']);
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'server.ext', '-out', 'server.pem']);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class Slapd {
  private process?: ChildProcess;

  private constructor(
    readonly settings: SlapdSettings,
    readonly dir: string,
    readonly port: number,
    /** The `ldaps://` port, with `tls`. */
    readonly tlsPort?: number,
  ) {}

  get url(): string {
    return `ldap://127.0.0.1:${this.port}`;
  }

  get ldapsUrl(): string {
    return `ldaps://127.0.0.1:${this.tlsPort}`;
  }

  /** The CA that signed the server's certificate (PEM), with `tls`. */
  get ca(): string {
    return readFileSync(join(this.dir, 'ca.pem'), 'utf8');
  }

  /** A new server with the entries loaded. */
  static async start(settings: SlapdSettings): Promise<Slapd> {
    const dir = mkdtempSync(join(tmpdir(), 'nsa-slapd-'));
    mkdirSync(join(dir, 'db'));
    if (settings.tls) makeCertificates(dir);
    writeFileSync(join(dir, 'slapd.conf'), config(dir, settings));
    const server = new Slapd(settings, dir, settings.port ?? (await freePort()), settings.tls ? await freePort() : undefined);
    try {
      await server.resume();
      // The Relax Rules control lets the administrator set operational attributes (entryUUID).
      await server.ldap('ldapadd', settings.ldif, ['-e', 'relax']);
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  /** Start (again) on the same ports and database. */
  async resume(): Promise<void> {
    if (this.process) return;
    const listen = this.tlsPort ? `${this.url}/ ${this.ldapsUrl}/` : `${this.url}/`;
    const child = spawn('/usr/sbin/slapd', ['-f', join(this.dir, 'slapd.conf'), '-h', listen, '-d', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let output = '';
    child.stderr!.on('data', (chunk) => (output += chunk));
    this.process = child;
    const deadline = Date.now() + 10_000;
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        this.process = undefined;
        child.kill('SIGKILL');
        throw new Error(`slapd did not start on port ${this.port}:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Stop the server (the directory is down); `resume()` brings it back. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child) return;
    this.process = undefined;
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  /** Freeze the server: the kernel still accepts connections, nothing is answered (a hung directory). */
  pause(): void {
    this.process?.kill('SIGSTOP');
  }

  unpause(): void {
    this.process?.kill('SIGCONT');
  }

  /** Run `ldapadd` or `ldapmodify` as the administrator with `ldif` on standard input. */
  ldap(program: 'ldapadd' | 'ldapmodify', ldif: string, extraArgs: string[] = []): Promise<void> {
    return new Promise((resolve, reject) => {
      const tls = this.settings.tls ? ['-ZZ'] : [];
      const env = this.settings.tls ? { ...process.env, LDAPTLS_CACERT: join(this.dir, 'ca.pem') } : process.env;
      const args = ['-x', ...tls, ...extraArgs, '-H', this.url, '-D', this.settings.adminDn, '-w', this.settings.adminPassword];
      const child = execFile(program, args, { env }, (error, _stdout, stderr) =>
        error ? reject(new Error(`${program} failed: ${stderr || error.message}`)) : resolve(),
      );
      child.stdin!.end(ldif);
    });
  }

  /** Add `value` to (or, with `remove`, take it out of) an attribute of the group `groupDn`, over LDAP. */
  member(groupDn: string, attribute: 'member' | 'uniqueMember' | 'memberUid', value: string, remove = false): Promise<void> {
    return this.ldap('ldapmodify', `dn: ${groupDn}\nchangetype: modify\n${remove ? 'delete' : 'add'}: ${attribute}\n${attribute}: ${value}\n`);
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
