import { entryIdentity } from '../src/backends/ldap/ldap-directory.js';

/** How LdapBackend writes an entry's stable id as the subject that links it to its local user. */
const DANA = 'uid=dana,ou=people,dc=example,dc=com';

describe('the text of an LDAP entry’s identity', () => {
  const entry = (value: Buffer | string) => ({ dn: DANA, objectGUID: value, entryUUID: value });

  it('prints Active Directory’s objectGUID as its tools do, the first three fields little-endian', () => {
    const bytes = Buffer.from('e004253f894fd3119a0c0305e82c3301', 'hex');
    expect(entryIdentity(entry(bytes), 'objectGUID')).toBe('3f2504e0-4f89-11d3-9a0c-0305e82c3301');
    expect(entryIdentity(entry(bytes), 'objectguid')).toBe('3f2504e0-4f89-11d3-9a0c-0305e82c3301');
  });

  it('keeps text as it is, writes other bytes in hex, and has nothing for a missing value', () => {
    expect(entryIdentity(entry(Buffer.from('5a1b0c9e-0d3f-4a55-9b1e-3c2a4d6e7f80')), 'entryUUID')).toBe('5a1b0c9e-0d3f-4a55-9b1e-3c2a4d6e7f80');
    expect(entryIdentity(entry(Buffer.from([0xff, 0x00, 0x41])), 'entryUUID')).toBe('ff0041');
    expect(entryIdentity({ dn: DANA, entryUUID: [] }, 'entryUUID')).toBeUndefined();
    expect(entryIdentity({ dn: DANA }, 'entryUUID')).toBeUndefined();
  });
});
