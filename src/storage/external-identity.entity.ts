import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/**
 * Which local user a person of an outside source is: the backend's name and the stable id the
 * source gives that person (an OpenID Connect subject, an LDAP entry's `entryUUID`, the name a
 * trusted proxy vouches for). Written when the backend creates the user, or links an existing
 * account because the app said so; a backend that finds no row never takes over an account of
 * the same name.
 */
@Entity({ name: 'auth_external_identity' })
@Index('auth_external_identity_source_subject', ['source', 'subject'], { unique: true })
export class ExternalIdentity {
  @PrimaryGeneratedColumn()
  id!: number;

  /** The backend's name (`AuthBackend.name`), as sessions record it. */
  @Column({ type: 'varchar', length: 150 })
  source!: string;

  @Column({ type: 'varchar', length: 255 })
  subject!: string;

  @Index('auth_external_identity_user_id_idx')
  @Column({ name: 'user_id', type: 'varchar', length: 255 })
  userId!: string;
}
