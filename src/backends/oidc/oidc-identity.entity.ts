import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/**
 * Which local user an identity at a provider is: the provider's name and the subject (`sub`, or
 * the configured claim), so a changed email at the provider never makes a second user.
 */
@Entity({ name: 'auth_oidc_identity' })
@Index('auth_oidc_identity_provider_subject', ['provider', 'subject'], { unique: true })
export class OidcIdentity {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 150 })
  provider!: string;

  @Column({ type: 'varchar', length: 255 })
  subject!: string;

  @Index('auth_oidc_identity_user_id_idx')
  @Column({ name: 'user_id', type: 'varchar', length: 255 })
  userId!: string;
}
