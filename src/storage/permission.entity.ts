import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A permission, named `'app.action'` in full (Django's `app_label.codename`). */
@Entity({ name: 'auth_permission' })
export class Permission {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 255, unique: true })
  codename!: string;

  @Column({ type: 'varchar', length: 255, default: '' })
  name!: string;
}
