import { Module, type DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule, ModelBackend, authEntities } from 'nestjs-session-auth';
import { AccountsController } from './accounts.controller.js';
import { DictionaryBackend } from './dictionary.backend.js';

/** Where users, groups, permissions and sessions live. */
export type DatabaseOptions =
  | { type: 'better-sqlite3'; database: string }
  | { type: 'postgres'; url: string };

export interface AppOptions {
  database: DatabaseOptions;
  /** Signs the session cookie and keys the session auth hashes. */
  sessionSecret: string;
}

@Module({})
export class AppModule {
  static forRoot({ database, sessionSecret }: AppOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        TypeOrmModule.forRoot({ ...database, entities: [...authEntities], synchronize: true }),
        AuthModule.forRoot({
          // Asked in this order; the first backend that returns a user wins.
          backends: [ModelBackend, DictionaryBackend],
          session: { secret: sessionSecret },
        }),
      ],
      controllers: [AccountsController],
      providers: [DictionaryBackend],
    };
  }
}
