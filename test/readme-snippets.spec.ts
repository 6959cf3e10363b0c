import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * Every TypeScript block of README.md type-checks against the library's sources, as a reader
 * would paste it into a file of an app. A block is a fragment: what it uses without importing or
 * declaring it comes from a preamble made for it, and only that —
 *
 * - imports of the names it uses from the library (its root and subpaths, by their exports), Nest
 *   and the packages the README names (MODULES below; a block that imports a name itself keeps it);
 * - declarations of the few variables the README's fragments take as given (AMBIENT below: `req`,
 *   `user`, `app`, `secret`…), each typed as an app would have it;
 * - `...` alone in an object (`{ ..., passwordHashers }`) stands for the options the block leaves
 *   out, and is compiled as `...rest`.
 *
 * `<!-- check: complete -->` above a block says it stands alone, imports included: it gets no
 * preamble (nor does a block shown as a file of the app, `<!-- file: src/main.ts -->`).
 * `<!-- check: class-body -->` says it is the body of a class (a handler written without its
 * controller). JavaScript blocks are parsed; shell, HTML and output blocks are not
 * code this test can check (compat/first-hour.mjs runs the Quick start's commands). The Quick
 * start's `app.module.ts` must also be `test/support/quick-start.app.ts`, which
 * test/quick-start.e2e.spec.ts runs.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Block {
  /** The line of the opening fence in README.md (1-based). */
  line: number;
  lang: string;
  code: string;
  markers: string[];
  section: string;
}

function readmeBlocks(): Block[] {
  const lines = readFileSync(join(root, 'README.md'), 'utf8').split('\n');
  const blocks: Block[] = [];
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('## ')) section = lines[i].slice(3);
    const fence = /^(\s*)```(\w*)\s*$/.exec(lines[i]);
    if (!fence) continue;
    const indent = fence[1];
    const end = lines.findIndex((line, j) => j > i && line.trim() === '```');
    const markers: string[] = [];
    for (let k = i - 1; k >= 0 && /^\s*<!-- .* -->\s*$/.test(lines[k]); k--) markers.unshift(lines[k].trim().slice(5, -4));
    const code = lines
      .slice(i + 1, end)
      .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
      .join('\n');
    blocks.push({ line: i + 1, lang: fence[2], code: `${code}\n`, markers, section });
    i = end;
  }
  return blocks;
}

/** The names a module of this library exports (values and types), read from its entry file. */
function exportsOf(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const names: string[] = [];
  for (const statement of source.statements) {
    if (ts.isExportDeclaration(statement) && statement.exportClause && ts.isNamedExports(statement.exportClause)) {
      names.push(...statement.exportClause.elements.map((element) => element.name.text));
    }
  }
  return names;
}

const entries = readdirSync(join(root, 'src/entries')).map((file) => file.replace(/\.ts$/, ''));

/** Where a name a block uses without importing it comes from, in order of preference. */
const MODULES: [module: string, names: string[], typeOnly?: string[]][] = [
  ['nestjs-session-auth', exportsOf(join(root, 'src/index.ts'))],
  ...entries.map((entry): [string, string[]] => [`nestjs-session-auth/${entry}`, exportsOf(join(root, 'src/entries', `${entry}.ts`))]),
  ['nestjs-session-auth/testing', exportsOf(join(root, 'src/testing/index.ts'))],
  [
    '@nestjs/common',
    ['Body', 'Controller', 'Get', 'Post', 'Patch', 'Param', 'Injectable', 'Module', 'Req', 'Res', 'UseGuards', 'UseFilters', 'RequestMethod', 'HttpCode'],
    ['INestApplication', 'MiddlewareConsumer', 'NestModule', 'CanActivate', 'ExecutionContext', 'Type'],
  ],
  ['@nestjs/common', ['UnauthorizedException', 'BadRequestException', 'ForbiddenException']],
  ['@nestjs/core', ['NestFactory']],
  ['@nestjs/typeorm', ['TypeOrmModule']],
  ['@nestjs/platform-fastify', ['FastifyAdapter'], ['NestFastifyApplication']],
  ['@nestjs/graphql', ['GraphQLModule', 'Resolver', 'Query', 'Mutation', 'ResolveField', 'Args', 'Context', 'ObjectType', 'Field', 'ID']],
  ['@nestjs/apollo', ['ApolloDriver'], ['ApolloDriverConfig']],
  ['@nestjs/mercurius', ['MercuriusDriver'], ['MercuriusDriverConfig']],
  ['@nestjs/websockets', ['WebSocketGateway', 'SubscribeMessage', 'MessageBody']],
  ['@nestjs/platform-socket.io', ['IoAdapter']],
  ['socket.io', [], ['ServerOptions']],
  ['express', [], ['Request', 'Response']],
  ['node:fs', ['readFileSync']],
  ['supertest', ['default as request']],
];

/** Variables the README's fragments take as given, as an app would have them. */
const AMBIENT: Record<string, string> = {
  app: 'declare const app: INestApplication;',
  AppModule: 'declare class AppModule {}',
  req: 'declare const req: Request;',
  res: 'declare const res: Response;',
  user: 'declare const user: User;',
  carol: 'declare const carol: User;',
  auth: 'declare const auth: AuthService;',
  users: 'declare const users: UserManager;',
  passwords: 'declare const passwords: PasswordHasher;',
  secret: 'declare const secret: string;',
  next: 'declare const next: string;',
  sku: 'declare const sku: string;',
  body: 'declare const body: Record<string, string>;',
  redisClient: "declare const redisClient: import('nestjs-session-auth/throttle').RedisLikeClient;",
  EmailBackend: 'declare const EmailBackend: Type<AuthBackend>;',
  PostsService: 'declare class PostsService { find(id: string): Promise<object>; }',
  ProfileForm: 'interface ProfileForm { displayName: string }',
  directory: 'declare const directory: { emailOf(username: string): Promise<string> };',
  audit: 'declare function audit(what: unknown): void;',
  save: 'declare function save(hash: string): void;',
  // Whatever the options the block leaves out hold.
  rest: 'declare const rest: any;',
  // The sample app's own helpers (sample-app/src), for its README excerpt.
  Form: 'type Form = Record<string, unknown>;',
  textField: 'declare function textField(form: Form, name: string, maxLength: number): string;',
  safeNext: 'declare function safeNext(request: Request, next: unknown): string;',
  layoutContext: 'declare function layoutContext(request: Request, visitor: RequestUser<User>): object;',
  loginPage: 'declare function loginPage(layout: object, form: object): string;',
};

interface Snippet {
  block: Block;
  fileName: string;
  text: string;
  /** Lines added above the block's own first line. */
  offset: number;
}

/** Identifiers a block binds itself at its top level: its imports and declarations. */
function ownNames(code: string): Set<string> {
  const source = ts.createSourceFile('block.ts', code, ts.ScriptTarget.Latest, true);
  const names = new Set<string>();
  const bind = (name: ts.BindingName) => {
    if (ts.isIdentifier(name)) names.add(name.text);
    else for (const element of name.elements) if (!ts.isOmittedExpression(element)) bind(element.name);
  };
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      if (clause?.name) names.add(clause.name.text);
      if (clause?.namedBindings && ts.isNamedImports(clause.namedBindings)) for (const element of clause.namedBindings.elements) names.add(element.name.text);
      if (clause?.namedBindings && ts.isNamespaceImport(clause.namedBindings)) names.add(clause.namedBindings.name.text);
    } else if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) bind(declaration.name);
    } else if ((ts.isClassDeclaration(statement) || ts.isFunctionDeclaration(statement) || ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) && statement.name) {
      names.add(statement.name.text);
    }
  }
  return names;
}

/** The block with the preamble it needs, as a module file of its own. */
function snippet(block: Block): Snippet {
  let code = block.code.replace(/\{\s*\.\.\.\s*,/g, '{ ...rest,');
  if (block.markers.includes('check: class-body')) code = `class Snippet {\n  constructor(private readonly auth: AuthService) {}\n${code}}\n`;
  // A name used as such: not a property (`obj.name`, `name:`) or inside a string; `...name` counts.
  const uses = (name: string) => new RegExp(`(?<![\\w$'"])(?<!(?<!\\.\\.)\\.)${name}(?![\\w$'":])`).test(code);
  // A block that says it is complete (or is a file of the app) gets nothing: a reader copies it as it is.
  const complete = block.markers.some((marker) => marker === 'check: complete' || marker.startsWith('file: '));
  const own = ownNames(code);
  const taken = new Set(complete ? [...own, ...Object.keys(AMBIENT), ...MODULES.flatMap(([, values, types = []]) => [...values, ...types])] : own);
  const preamble: string[] = [];
  const wanted = new Set<string>();
  for (const name of Object.keys(AMBIENT)) if (!taken.has(name) && uses(name)) wanted.add(name);
  // Names the ambient declarations use need importing as well.
  const ambientText = [...wanted].map((name) => AMBIENT[name]).join('\n');
  for (const [module, values, types = []] of MODULES) {
    const pick = (list: string[]) =>
      list.filter((entry) => {
        const local = entry.split(' as ').pop()!;
        if (taken.has(local) || !(uses(local) || new RegExp(`\\b${local}\\b`).test(ambientText))) return false;
        taken.add(local);
        return true;
      });
    const chosen = [...pick(values), ...pick(types).map((name) => `type ${name}`)];
    if (chosen.length > 0) preamble.push(`import { ${chosen.join(', ')} } from '${module}';`);
  }
  for (const name of wanted) preamble.push(AMBIENT[name]);
  preamble.push('export {};');
  const head = `${preamble.join('\n')}\n`;
  const classOffset = block.markers.includes('check: class-body') ? 2 : 0;
  // A block shown as a file of the app is that file (src/main.ts imports ./app.module.js); the others sit beside them.
  const file = block.markers.find((marker) => marker.startsWith('file: '))?.slice(6) ?? `src/readme-${block.line}.mts`;
  return { block, fileName: join(root, 'test', 'readme-snippets', file), text: head + code, offset: preamble.length + classOffset };
}

/** Type-check every snippet in one program; resolves the diagnostics, by README line. */
function typeCheck(snippets: Snippet[]): string[] {
  const files = new Map(snippets.map((entry) => [entry.fileName, entry]));
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    useDefineForClassFields: false,
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
    types: ['node'],
    paths: { 'nestjs-session-auth': ['./src/index.ts'], 'nestjs-session-auth/testing': ['./src/testing/index.ts'], 'nestjs-session-auth/*': ['./src/entries/*.ts'] },
    baseUrl: root,
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.readFile = (name) => files.get(name)?.text ?? readFile(name);
  host.fileExists = (name) => files.has(name) || fileExists(name);
  const virtualDirs = new Set([...files.keys()].flatMap((name) => [dirname(name), dirname(dirname(name))]));
  const directoryExists = host.directoryExists?.bind(host);
  host.directoryExists = (name) => virtualDirs.has(name) || (directoryExists?.(name) ?? true);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, onError, create) => {
    const entry = files.get(name);
    return entry ? ts.createSourceFile(name, entry.text, version, true) : getSourceFile(name, version, onError, create);
  };
  const program = ts.createProgram([...files.keys()], options, host);
  return [...files.keys()].flatMap((name) => {
    const source = program.getSourceFile(name)!;
    return [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)].map((diagnostic) => {
      const entry = files.get(name)!;
      const { line } = source.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
      const at = line - entry.offset;
      const where = at >= 0 ? `README.md:${entry.block.line + 1 + at}` : `README.md:${entry.block.line} (preamble)`;
      return `${where} (${entry.block.section}): ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
    });
  });
}

describe('the README', () => {
  const blocks = readmeBlocks();

  it('has only blocks this test knows how to check', () => {
    const unknown = blocks.filter((block) => !['ts', 'js', 'bash', 'sh', 'html', ''].includes(block.lang));
    expect(unknown.map((block) => `README.md:${block.line} ${block.lang}`)).toEqual([]);
  });

  it('has TypeScript blocks that type-check against the library, each with only the preamble it needs', () => {
    const snippets = blocks.filter((block) => block.lang === 'ts').map(snippet);
    expect(snippets.length).toBeGreaterThan(25);
    expect(typeCheck(snippets)).toEqual([]);
  });

  it('has JavaScript blocks that parse', () => {
    const problems = blocks
      .filter((block) => block.lang === 'js')
      .flatMap((block) => {
        const source = ts.createSourceFile('block.mjs', block.code, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
        return (source as unknown as { parseDiagnostics: ts.Diagnostic[] }).parseDiagnostics.map((d) => `README.md:${block.line}: ${d.messageText}`);
      });
    expect(problems).toEqual([]);
  });

  it("shows, as the Quick start's app.module.ts, the file test/quick-start.e2e.spec.ts runs", () => {
    const shown = blocks.find((block) => block.markers.includes('file: src/app.module.ts'))!;
    const tested = readFileSync(join(root, 'test/support/quick-start.app.ts'), 'utf8').replace(/^\/\/.*\n/, '');
    expect(shown.code).toBe(tested);
  });
});
