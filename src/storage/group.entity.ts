import { Column, Entity, JoinTable, ManyToMany, PrimaryGeneratedColumn } from 'typeorm';
import { Permission } from './permission.entity.js';

/** A named set of permissions that users inherit by membership. */
@Entity({ name: 'auth_group' })
export class Group {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 150, unique: true })
  name!: string;

  @ManyToMany(() => Permission)
  @JoinTable({
    name: 'auth_group_permissions',
    joinColumn: { name: 'group_id' },
    inverseJoinColumn: { name: 'permission_id' },
  })
  permissions!: Permission[];
}
