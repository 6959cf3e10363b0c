import { Slapd, type SlapdSettings } from '../../sample-app/src/ldap/slapd.js';

/**
 * The directory of the LDAP tests: a real OpenLDAP (Debian's `slapd`, started on a loopback
 * port from a temporary config and database by the sample's `Slapd`) with the fixtures below.
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

/** A directory entry named like the app's local superuser, its mail an outsider's. */
export const DIRECTORY_ADMIN = { uid: 'admin', password: 'directory-admin-password', mail: 'mallory@evil.example' };

/**
 * People: dana (staff, developers by memberUid), erin (editors, everyone directly), frank (banned),
 * gail (in no group, gid 2000: developers by gidNumber), `o(brien)*`, whose name needs filter
 * escaping, and `admin` (`DIRECTORY_ADMIN`). Groups of the common types, `everyone` holding the
 * `staff` group (nested).
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
dn: uid=${DIRECTORY_ADMIN.uid},${PEOPLE}
objectClass: inetOrgPerson
uid: ${DIRECTORY_ADMIN.uid}
cn: Mallory Admin
sn: Admin
mail: ${DIRECTORY_ADMIN.mail}
userPassword: ${DIRECTORY_ADMIN.password}

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

/** A server with these fixtures, TLS and anonymous access as asked (see `sample-app/src/ldap/slapd.ts`). */
export function startSlapd(options: Pick<SlapdSettings, 'tls' | 'anonymous'> = {}): Promise<Slapd> {
  return Slapd.start({ suffix: BASE_DN, adminDn: ADMIN_DN, adminPassword: ADMIN_PASSWORD, serviceDn: SERVICE_DN, ldif: FIXTURES, ...options });
}

export { Slapd };
