import { LdapBackend } from 'nestjs-session-auth/ldap';
import { DIRECTORY_IDS } from '../directory.service.js';
import { STAFF_GROUP } from '../permissions.js';
import type { SlapdSettings } from './slapd.js';

/**
 * The sample's company directory as a real OpenLDAP holds it: the same people as the in-memory
 * stand-in (`DirectoryService`), dana in the staff group, erin not. `npm run ldap` serves it,
 * each person with the `entryUUID` a long-running directory would have kept for them: the
 * local users `LdapBackend` links to them stay theirs across restarts of the throwaway server.
 */
export const DIRECTORY_SUFFIX = 'dc=example,dc=com';
const PEOPLE = `ou=people,${DIRECTORY_SUFFIX}`;
const GROUPS = `ou=groups,${DIRECTORY_SUFFIX}`;
/** The account the app searches the directory with (read-only, no passwords). */
export const DIRECTORY_READER = { dn: `cn=reader,${DIRECTORY_SUFFIX}`, password: 'reader-password' };

const person = (uid: keyof typeof DIRECTORY_IDS, given: string, surname: string, password: string) => `
dn: uid=${uid},${PEOPLE}
objectClass: inetOrgPerson
entryUUID: ${DIRECTORY_IDS[uid]}
uid: ${uid}
cn: ${given} ${surname}
givenName: ${given}
sn: ${surname}
mail: ${uid}@directory.example
userPassword: ${password}
`;

export const SAMPLE_DIRECTORY: Omit<SlapdSettings, 'port'> = {
  suffix: DIRECTORY_SUFFIX,
  adminDn: `cn=admin,${DIRECTORY_SUFFIX}`,
  adminPassword: 'directory-admin-password',
  serviceDn: DIRECTORY_READER.dn,
  ldif: `
dn: ${DIRECTORY_SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ${DIRECTORY_READER.dn}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: ${DIRECTORY_READER.password}

dn: ${PEOPLE}
objectClass: organizationalUnit
ou: people

dn: ${GROUPS}
objectClass: organizationalUnit
ou: groups
${person('dana', 'Dana', 'Scully', 'daylight')}${person('erin', 'Erin', 'Brockovich', 'evergreen')}
dn: cn=${STAFF_GROUP},${GROUPS}
objectClass: groupOfNames
cn: ${STAFF_GROUP}
member: uid=dana,${PEOPLE}
`,
};

/**
 * The backend for that directory: the password checked by a bind as the person, the local
 * user created at the first login, linked to the entry's `entryUUID` and kept in line (email,
 * the staff flag, the local `staff` group that carries the staff page's permission). A local
 * account it did not create is never its to log into, even with the same name.
 */
export function sampleLdapBackend(url: string) {
  return LdapBackend.configure({
    url,
    bindDn: DIRECTORY_READER.dn,
    bindPassword: DIRECTORY_READER.password,
    userDnTemplate: `uid=%(user)s,${PEOPLE}`,
    userAttrMap: { email: 'mail' },
    groupSearch: { base: GROUPS, type: 'groupOfNames' },
    userFlagsByGroup: { isStaff: `cn=${STAFF_GROUP},${GROUPS}` },
    mirrorGroups: [STAFF_GROUP],
  });
}
