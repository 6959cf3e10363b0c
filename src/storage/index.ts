import { ExternalIdentity } from './external-identity.entity.js';
import { Group } from './group.entity.js';
import { LoginLockout } from './login-lockout.entity.js';
import { Permission } from './permission.entity.js';
import { SessionRecord } from './session.entity.js';
import { User } from './user.entity.js';

export { ExternalIdentity, Group, LoginLockout, Permission, SessionRecord, User };
export { TypeOrmSessionStore, type TypeOrmSessionStoreOptions } from './typeorm-session.store.js';

/** Every entity the module needs; spread into the app's DataSource `entities`. */
export const authEntities = [User, Group, Permission, SessionRecord, LoginLockout, ExternalIdentity];
