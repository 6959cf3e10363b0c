/** `nestjs-session-auth/ldap`: `LdapBackend`, users from an LDAP directory (needs the `ldapts` package). */
export { LdapBackend, type LdapPopulateContext } from '../backends/ldap/ldap.backend.js';
export { DirectoryUnavailable, type LdapUser, type LdapGroup } from '../backends/ldap/ldap-directory.js';
export type { LdapBackendOptions, LdapGroupSearch, LdapGroupType, LdapGroupRule } from '../backends/ldap/ldap.options.js';
