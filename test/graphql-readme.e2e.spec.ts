import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { MercuriusDriver, type MercuriusDriverConfig } from '@nestjs/mercurius';
import { UnauthorizedException } from '@nestjs/common';
import { Args, Context, Field, GraphQLModule, Mutation, ObjectType, Query, ResolveField, Resolver } from '@nestjs/graphql';
import type { Request } from 'express';
import request from 'supertest';
import { AuthService, CurrentUser, LoginRequired, PermissionManager, PermissionRequired, type User } from 'nestjs-session-auth';
import { forceLogin } from 'nestjs-session-auth/testing';
import { createTestApp, sessionCookie, type TestApp } from './support/test-app.js';

/**
 * The README's GraphQL example, as written there: a field refused by `@PermissionRequired()` is
 * `nullable`, so the reader who lacks the permission still gets the rest of the report. Without
 * `nullable: true` (the README's first version) the refusal nulls the whole `data`.
 */

@ObjectType()
class Account {
  @Field() username!: string;
}

@ObjectType()
class Report {
  @Field() title!: string;
}

@Resolver(() => Report)
class ReportsResolver {
  constructor(private readonly auth: AuthService) {}

  @LoginRequired() @Query(() => Account)
  me(@CurrentUser() user: User): Account { return { username: user.username }; }

  @LoginRequired() @Query(() => Report)
  report(): Report { return { title: 'Quarterly figures' }; }

  @PermissionRequired('reports.view_figures') @ResolveField(() => String, { nullable: true })
  figures(): string { return '42'; }

  @Mutation(() => Account)
  async login(@Context('req') req: Request, @Args('username') username: string, @Args('password') password: string): Promise<Account> {
    const user = await this.auth.authenticate<User>(req, { username, password });
    if (!user) throw new UnauthorizedException('Invalid username or password.');
    await this.auth.login(req, user);
    return { username: user.username };
  }
}

/** The same report with the field left non-null, as the README first had it (a type of its own: field metadata is per type). */
@ObjectType()
class FirstReport {
  @Field() title!: string;
}

@Resolver(() => FirstReport)
class NonNullFiguresResolver {
  @LoginRequired() @Query(() => FirstReport)
  report(): FirstReport { return { title: 'Quarterly figures' }; }

  @PermissionRequired('reports.view_figures') @ResolveField(() => String)
  figures(): string { return '42'; }

  @Mutation(() => Account)
  async login(): Promise<Account> { return { username: '' }; }
}

const DRIVERS = [
  {
    driver: 'Apollo',
    platform: 'express' as const,
    module: () => GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true, fieldResolverEnhancers: ['guards'] }),
  },
  {
    driver: 'Mercurius',
    platform: 'fastify' as const,
    module: () => GraphQLModule.forRoot<MercuriusDriverConfig>({ driver: MercuriusDriver, autoSchemaFile: true, fieldResolverEnhancers: ['guards'] }),
  },
];

describe.each(DRIVERS)("the README's GraphQL example ($driver on $platform)", ({ platform, module }) => {
  let t: TestApp;

  afterEach(() => t.close());

  async function boot(resolver: Function) {
    t = await createTestApp({ platform, imports: [module()], providers: [resolver as any] });
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
  }

  const graphql = (query: string, cookie?: string) => {
    const call = request(t.app.getHttpServer()).post('/graphql').set('Content-Type', 'application/json').send({ query });
    return cookie ? call.set('Cookie', cookie) : call;
  };

  async function carol(): Promise<string> {
    const response = await graphql('mutation { login(username: "carol", password: "correct horse") { username } }').expect(200);
    return sessionCookie(response.headers['set-cookie'])!;
  }

  it('answers the rest of the report, figures null and one FORBIDDEN error, to a reader without the permission', async () => {
    await boot(ReportsResolver);
    const cookie = await carol();

    const denied = await graphql('{ report { title figures } }', cookie).expect(200);

    expect(denied.body.data).toEqual({ report: { title: 'Quarterly figures', figures: null } });
    expect(denied.body.errors.map((error: any) => [error.extensions.code, error.path])).toEqual([['FORBIDDEN', ['report', 'figures']]]);

    await t.app.get(PermissionManager).createPermission('reports.view_figures');
    await t.app.get(PermissionManager).grantPermission((await t.users.findByUsername('carol'))!, 'reports.view_figures');
    const allowed = await graphql('{ report { title figures } }', cookie).expect(200);
    expect(allowed.body).toEqual({ data: { report: { title: 'Quarterly figures', figures: '42' } } });
  });

  it('would answer no data at all with the field non-null', async () => {
    await boot(NonNullFiguresResolver);
    const cookie = await forceLogin(t.app, (await t.users.findByUsername('carol'))!);

    const denied = await graphql('{ report { title figures } }', cookie).expect(200);

    expect(denied.body.data).toBeNull();
    expect(denied.body.errors[0].extensions.code).toBe('FORBIDDEN');
  });
});
