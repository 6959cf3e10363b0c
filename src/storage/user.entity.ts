import { Column, Entity, JoinTable, ManyToMany, PrimaryGeneratedColumn } from 'typeorm';
import { Group } from './group.entity.js';
import { Permission } from './permission.entity.js';

/** The built-in user model (Django's `auth.User`). */
@Entity({ name: 'auth_user' })
export class User {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 150, unique: true })
  username!: string;

  /** `<algorithm>$<hash>`, or `!…` for an unusable password. Never sent in JSON. */
  @Column({ type: 'varchar', length: 255 })
  password!: string;

  @Column({ name: 'first_name', type: 'varchar', length: 150, default: '' })
  firstName!: string;

  @Column({ name: 'last_name', type: 'varchar', length: 150, default: '' })
  lastName!: string;

  @Column({ type: 'varchar', length: 254, default: '' })
  email!: string;

  @Column({ name: 'is_active', type: 'boolean', default: true })
  isActive!: boolean;

  @Column({ name: 'is_staff', type: 'boolean', default: false })
  isStaff!: boolean;

  @Column({ name: 'is_superuser', type: 'boolean', default: false })
  isSuperuser!: boolean;

  @Column({ name: 'last_login', type: Date, nullable: true })
  lastLogin!: Date | null;

  @Column({ name: 'date_joined', type: Date })
  dateJoined!: Date;

  @ManyToMany(() => Group)
  @JoinTable({
    name: 'auth_user_groups',
    joinColumn: { name: 'user_id' },
    inverseJoinColumn: { name: 'group_id' },
  })
  groups!: Group[];

  @ManyToMany(() => Permission)
  @JoinTable({
    name: 'auth_user_user_permissions',
    joinColumn: { name: 'user_id' },
    inverseJoinColumn: { name: 'permission_id' },
  })
  userPermissions!: Permission[];

  /** Name of the backend that authenticated this user; set by the module, not stored. */
  backend?: string;

  get isAuthenticated(): true {
    return true;
  }

  get isAnonymous(): false {
    return false;
  }

  getUsername(): string {
    return this.username;
  }

  toString(): string {
    return this.username;
  }

  /** Keeps the password hash out of every JSON response that includes a user. */
  toJSON(): Record<string, unknown> {
    const { password: _password, ...visible } = this as Record<string, unknown>;
    return { ...visible, isAuthenticated: true };
  }
}
