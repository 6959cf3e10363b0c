import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real OpenLDAP server for the tests: Debian's `slapd`, started on a loopback port from a
 * temporary config and database, with the fixtures below loaded over LDAP (so the memberOf
 * overlay sees them). Never the system's slapd.
 */

export const BASE_DN = 'dc=example,dc=com';
export const ADMIN_DN = `cn=admin,${BASE_DN}`;
export const ADMIN_PASSWORD = 'admin-secret';
/** A read-only service account for searches. */
export const SERVICE_DN = `cn=reader,${BASE_DN}`;
export const SERVICE_PASSWORD = 'reader-secret';
export const PEOPLE = `ou=people,${BASE_DN}`;
export const GROUPS = `ou=groups,${BASE_DN}`;

const person = (uid: string, given: string, surname: string, password: string, uidNumber: number, gidNumber = 1000) => `
dn: uid=${uid},${PEOPLE}
objectClass: inetOrgPerson
objectClass: posixAccount
uid: ${uid}
cn: ${given} ${surname}
givenName: ${given}
sn: ${surname}
mail: ${uid.replace(/[^a-z]/g, '')}@example.com
uidNumber: ${uidNumber}
gidNumber: ${gidNumber}
homeDirectory: /home/${uid.replace(/[^a-z]/g, '')}
userPassword: ${password}
`;

/**
 * People: dana (staff, developers by memberUid), erin (editors, everyone directly), frank (banned),
 * gail (in no group, gid 2000: developers by gidNumber), and `o(brien)*`, whose name needs
 * filter escaping. Groups of the common types, `everyone` holding the `staff` group (nested).
 */
export const FIXTURES = `
dn: ${BASE_DN}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ${SERVICE_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: ${SERVICE_PASSWORD}

dn: ${PEOPLE}
objectClass: organizationalUnit
ou: people

dn: ${GROUPS}
objectClass: organizationalUnit
ou: groups
${person('dana', 'Dana', 'Scully', 'daylight', 1001)}${person('erin', 'Erin', 'Brockovich', 'evergreen', 1002)}${person('frank', 'Frank', 'Abagnale', 'forgery', 1003)}${person('gail', 'Gail', 'Peck', 'gardening', 1004, 2000)}${person('o(brien)*', 'Miles', 'OBrien', 'transporter', 1005)}
dn: cn=staff,${GROUPS}
objectClass: groupOfNames
cn: staff
member: uid=dana,${PEOPLE}

dn: cn=everyone,${GROUPS}
objectClass: groupOfNames
cn: everyone
member: cn=staff,${GROUPS}
member: uid=erin,${PEOPLE}

dn: cn=banned,${GROUPS}
objectClass: groupOfNames
cn: banned
member: uid=frank,${PEOPLE}

dn: cn=editors,${GROUPS}
objectClass: groupOfUniqueNames
cn: editors
uniqueMember: uid=erin,${PEOPLE}

dn: cn=developers,${GROUPS}
objectClass: posixGroup
cn: developers
gidNumber: 2000
memberUid: dana
`;

function config(dir: string, tls: boolean): string {
  const certificates = tls
    ? `TLSCACertificateFile ${dir}/ca.pem
TLSCertificateFile ${dir}/server.pem
TLSCertificateKeyFile ${dir}/server.key
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
suffix "${BASE_DN}"
rootdn "${ADMIN_DN}"
rootpw ${ADMIN_PASSWORD}
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
  by dn.exact="${SERVICE_DN}" read
  by users read
  by * none
`;
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

/**
 * A certificate authority and a server certificate for 127.0.0.1 and localhost, made with the
 * openssl command line in `dir` (`ca.pem`, `server.pem`, `server.key`).
 */
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

export class Slapd {
  private process?: ChildProcess;

  private constructor(
    readonly dir: string,
    readonly port: number,
    /** The `ldaps://` port, when started with TLS. */
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

  /** A new server with the fixtures loaded; with `tls`, StartTLS on `url` and LDAPS on `ldapsUrl`. */
  static async start(options: { tls?: boolean } = {}): Promise<Slapd> {
    const dir = mkdtempSync(join(tmpdir(), 'nsa-slapd-'));
    mkdirSync(join(dir, 'db'));
    if (options.tls) makeCertificates(dir);
    writeFileSync(join(dir, 'slapd.conf'), config(dir, !!options.tls));
    const server = new Slapd(dir, await freePort(), options.tls ? await freePort() : undefined);
    await server.resume();
    await server.ldap('ldapadd', FIXTURES);
    return server;
  }

  /** Start (again) on the same port and database. */
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

  /** Freeze the server: connections are accepted by the kernel, nothing is answered (a hung directory). */
  pause(): void {
    this.process?.kill('SIGSTOP');
  }

  unpause(): void {
    this.process?.kill('SIGCONT');
  }

  /** Run `ldapadd` or `ldapmodify` as the administrator with `ldif` on standard input. */
  ldap(program: 'ldapadd' | 'ldapmodify', ldif: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = execFile(program, ['-x', '-H', this.url, '-D', ADMIN_DN, '-w', ADMIN_PASSWORD], (error, _stdout, stderr) =>
        error ? reject(new Error(`${program} failed: ${stderr || error.message}`)) : resolve(),
      );
      child.stdin!.end(ldif);
    });
  }

  /** Add `memberDn` to (or, with `remove`, take it out of) the group `groupDn`, over LDAP. */
  member(groupDn: string, attribute: 'member' | 'uniqueMember' | 'memberUid', value: string, remove = false): Promise<void> {
    return this.ldap('ldapmodify', `dn: ${groupDn}\nchangetype: modify\n${remove ? 'delete' : 'add'}: ${attribute}\n${attribute}: ${value}\n`);
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
