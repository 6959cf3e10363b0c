import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** An app's own user model: UUID keys and a field the built-in User does not have. */
@Entity({ name: 'member' })
export class Member {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 150, unique: true })
  username!: string;

  @Column({ type: 'varchar', length: 255 })
  password!: string;

  @Column({ type: 'varchar', length: 254, default: '' })
  email!: string;

  @Column({ type: 'boolean', default: true })
  isActive!: boolean;

  @Column({ type: 'boolean', default: false })
  isStaff!: boolean;

  @Column({ type: 'boolean', default: false })
  isSuperuser!: boolean;

  @Column({ type: Date, nullable: true })
  lastLogin!: Date | null;

  @Column({ type: Date })
  dateJoined!: Date;

  @Column({ type: 'varchar', length: 50, default: 'free' })
  plan!: string;
}
