import type * as TS from 'typescript';
import { CommandError } from '../cli.errors.js';

const PACKAGE = 'nestjs-session-auth';
const TYPEORM = '@nestjs/typeorm';
/** The file `init` writes beside the module, imported first so `.env` is loaded before the options are read. */
export const LOAD_ENV = 'load-env';

/** What `init` changes in the app's root module, and what it found already there. */
export interface ModuleEdit {
  /** The new text; `undefined` when nothing needs to change. */
  text?: string;
  added: string[];
  present: string[];
  /** The module's TypeORM connection is the SQLite one `init` writes (better-sqlite3 must be installed). */
  sqlite: boolean;
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

/**
 * Plan the additions to the app's root module (`@Module({ imports: [...] })`): `AuthModule` with
 * `ModelBackend`, a session secret from the environment and the built-in views; `authEntities` in
 * TypeORM's entities (and a SQLite `TypeOrmModule.forRoot` when there is none); the import that
 * loads `.env` first. Only text is inserted, at places the TypeScript parser found; anything it
 * does not recognise (options built elsewhere, `forRootAsync`, two connections) is refused with
 * what to do by hand, and nothing is changed.
 */
export function editAppModule(ts: typeof TS, fileName: string, text: string): ModuleEdit {
  const parse = (content: string) => ts.createSourceFile(fileName, content, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const refuse = (why: string): never => {
    throw new CommandError(`${fileName}: ${why} Nothing was changed.`);
  };
  const source = parse(text);
  const bindings = topLevelBindings(ts, source);
  const localName = (module: string, name: string, alias?: string): { local: string; imported: boolean } => {
    const existing = [...bindings].find(([, binding]) => binding.module === module && binding.imported === name)?.[0];
    if (existing) return { local: existing, imported: true };
    if (!bindings.has(name)) return { local: name, imported: false };
    if (alias && !bindings.has(alias)) return { local: alias, imported: false };
    return refuse(`'${name}' already names something else here; import ${name} from '${module}' yourself under another name.`);
  };
  const authModule = localName(PACKAGE, 'AuthModule', 'SessionAuthModule');
  const modelBackend = localName(PACKAGE, 'ModelBackend');
  const entities = localName(PACKAGE, 'authEntities');
  const typeOrmModule = localName(TYPEORM, 'TypeOrmModule');

  /** The module's metadata, its `imports` array and the calls in it, found again in each version of the text. */
  const locate = (file: TS.SourceFile) => {
    const decorated = findModuleMetadata(ts, file, topLevelBindings(ts, file)) ?? refuse('no class decorated with @Module({ ... }) was found.');
    const metadata = decorated.metadata;
    if (!metadata || !ts.isObjectLiteralExpression(metadata)) return refuse('@Module() is not given an object literal.');
    const imports = member(ts, metadata, 'imports');
    if (imports === 'unknown' || (imports && !ts.isArrayLiteralExpression(imports.initializer))) {
      return refuse("@Module({ imports }) is not an array literal; add AuthModule.forRoot({ ... }) to it yourself (see the README's Quick start).");
    }
    if (!imports && metadata.properties.some((property) => ts.isSpreadAssignment(property))) {
      return refuse('@Module({ ... }) spreads other metadata, which may set imports; add AuthModule.forRoot({ ... }) yourself.');
    }
    const array = imports?.initializer as TS.ArrayLiteralExpression | undefined;
    const callsOn = (binding: { local: string; imported: boolean }) =>
      [...(array?.elements ?? [])].filter(
        (element): element is TS.CallExpression =>
          binding.imported &&
          ts.isCallExpression(element) &&
          ts.isPropertyAccessExpression(element.expression) &&
          ts.isIdentifier(element.expression.expression) &&
          element.expression.expression.text === binding.local &&
          /^forRoot(Async)?$/.test(element.expression.name.text),
      );
    return { metadata, array, typeOrm: callsOn(typeOrmModule), auth: callsOn(authModule) };
  };

  const found = locate(source);
  const added: string[] = [];
  const present: string[] = [];
  const operations: ((file: TS.SourceFile, content: string) => Edit)[] = [];
  const newElements: string[] = [];
  const needed = new Map<string, string[]>();
  const need = (module: string, name: string, binding: { local: string; imported: boolean }) => {
    if (binding.imported) return;
    needed.set(module, [...(needed.get(module) ?? []), binding.local === name ? name : `${name} as ${binding.local}`]);
  };

  let sqlite = false;
  if (found.typeOrm.length > 1) return refuse('it has several TypeOrmModule connections; add ...authEntities to the entities of the default one yourself.');
  if (found.typeOrm.length === 0) {
    newElements.push(
      `${typeOrmModule.local}.forRoot({\n` +
        `  type: 'better-sqlite3',\n` +
        `  database: process.env.DATABASE_PATH ?? 'db.sqlite',\n` +
        `  entities: [...${entities.local}],\n` +
        `  // Creates the tables at start-up: for development; use migrations in production.\n` +
        `  synchronize: true,\n` +
        `})`,
    );
    need(TYPEORM, 'TypeOrmModule', typeOrmModule);
    need(PACKAGE, 'authEntities', entities);
    added.push('TypeOrmModule.forRoot: a SQLite file (DATABASE_PATH, default db.sqlite) with authEntities, synchronize: true');
    sqlite = true;
  } else {
    const options = typeOrmOptions(ts, found.typeOrm[0], refuse);
    const type = member(ts, options, 'type');
    sqlite = !!type && type !== 'unknown' && ts.isStringLiteral(type.initializer) && type.initializer.text === 'better-sqlite3';
    const list = entitiesArray(ts, options, refuse);
    const spreadsAuth = list?.elements.some(
      (element) => ts.isSpreadElement(element) && ts.isIdentifier(element.expression) && entities.imported && element.expression.text === entities.local,
    );
    if (spreadsAuth) {
      present.push('authEntities in TypeOrmModule.forRoot({ entities })');
    } else {
      need(PACKAGE, 'authEntities', entities);
      added.push('authEntities in TypeOrmModule.forRoot({ entities })');
      operations.push((file, content) => {
        const options = typeOrmOptions(ts, locate(file).typeOrm[0], refuse);
        const array = entitiesArray(ts, options, refuse);
        const spread = `...${entities.local}`;
        if (!array) {
          const first = options.properties[0];
          if (!first) return { start: options.getStart(file) + 1, end: options.getEnd() - 1, text: ` entities: [${spread}] ` };
          const at = first.getStart(file);
          return { start: at, end: at, text: `entities: [${spread}],${separatorBefore(content, at)}` };
        }
        if (array.elements.length === 0) return { start: array.getStart(file), end: array.getEnd(), text: `[${spread}]` };
        const at = array.elements[0].getStart(file);
        return { start: at, end: at, text: `${spread},${separatorBefore(content, at)}` };
      });
    }
  }

  if (found.auth.length > 0) {
    present.push(`${authModule.local}.${(found.auth[0].expression as TS.PropertyAccessExpression).name.text}(…) in @Module({ imports }) (left as it is)`);
  } else {
    newElements.push(
      `${authModule.local}.forRoot({\n` +
        `  backends: [${modelBackend.local}],\n` +
        `  session: { secret: process.env.SESSION_SECRET! },\n` +
        `  // The built-in login, logout, password change and reset pages, under /accounts/.\n` +
        `  views: true,\n` +
        `})`,
    );
    need(PACKAGE, 'AuthModule', authModule);
    need(PACKAGE, 'ModelBackend', modelBackend);
    added.push('AuthModule.forRoot: ModelBackend, sessions signed with SESSION_SECRET, the built-in pages at /accounts/login');
  }
  if (newElements.length > 0) {
    operations.push((file, content) => {
      const { metadata, array } = locate(file);
      return insertElements(file, content, metadata, array, newElements);
    });
  }

  // `.env` must be in process.env before the options above are evaluated, i.e. before this file's body runs.
  const suffix = relativeImportSuffix(ts, source);
  const loadsEnv = source.statements.some(
    (statement) =>
      ts.isImportDeclaration(statement) &&
      ts.isStringLiteral(statement.moduleSpecifier) &&
      statement.moduleSpecifier.text.replace(/\.js$/, '') === `./${LOAD_ENV}`,
  );
  if (loadsEnv) {
    present.push(`import './${LOAD_ENV}${suffix}' (loads .env first)`);
  } else {
    added.push(`import './${LOAD_ENV}${suffix}' first, so .env is loaded before the options read it`);
    operations.push((file) => {
      const at = file.statements[0]?.getStart(file) ?? 0;
      return { start: at, end: at, text: `import './${LOAD_ENV}${suffix}';\n` };
    });
  }

  if (needed.size > 0) {
    const order = ['TypeOrmModule', 'AuthModule', 'ModelBackend', 'authEntities'];
    const rank = (name: string) => order.indexOf(name.split(' ')[0]);
    const lines = [...needed].map(([module, names]) => `import { ${names.sort((a, b) => rank(a) - rank(b)).join(', ')} } from '${module}';`);
    operations.push((file) => {
      const lastImport = [...file.statements].reverse().find((statement) => ts.isImportDeclaration(statement));
      const at = lastImport ? lastImport.getEnd() : 0;
      return { start: at, end: at, text: lastImport ? `\n${lines.join('\n')}` : `${lines.join('\n')}\n` };
    });
  }

  if (operations.length === 0) return { added, present, sqlite };
  // One edit at a time on a fresh parse: an edit inside the imports array never shifts another.
  let result = text;
  for (const operation of operations) {
    const edit = operation(parse(result), result);
    result = result.slice(0, edit.start) + edit.text + result.slice(edit.end);
  }
  return { text: result, added, present, sqlite };
}

/** The options object of `TypeOrmModule.forRoot({ ... })`; anything else is refused. */
function typeOrmOptions(ts: typeof TS, call: TS.CallExpression, refuse: (why: string) => never): TS.ObjectLiteralExpression {
  const name = (call.expression as TS.PropertyAccessExpression).name.text;
  const options = call.arguments[0];
  if (name !== 'forRoot' || !options || !ts.isObjectLiteralExpression(options)) {
    return refuse(`TypeOrmModule.${name}() is not given an object literal; add ...authEntities to the entities of its options yourself.`);
  }
  return options;
}

/** The `entities: [...]` of TypeORM's options, `undefined` when there is none; anything else is refused. */
function entitiesArray(ts: typeof TS, options: TS.ObjectLiteralExpression, refuse: (why: string) => never): TS.ArrayLiteralExpression | undefined {
  const list = member(ts, options, 'entities');
  if (list === 'unknown' || (list && !ts.isArrayLiteralExpression(list.initializer))) {
    return refuse('TypeOrmModule.forRoot({ entities }) is not an array literal; add ...authEntities to it yourself.');
  }
  if (!list && options.properties.some((property) => ts.isSpreadAssignment(property))) {
    return refuse('TypeOrmModule.forRoot({ ... }) spreads other options, which may set entities; add ...authEntities to them yourself.');
  }
  return list?.initializer as TS.ArrayLiteralExpression | undefined;
}

interface Binding {
  /** The module it is imported from; `''` for a declaration of this file. */
  module: string;
  imported: string;
}

/** Every name bound at the top of the file: imports (with their module) and declarations. */
function topLevelBindings(ts: typeof TS, source: TS.SourceFile): Map<string, Binding> {
  const names = new Map<string, Binding>();
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier)) {
      const module = statement.moduleSpecifier.text;
      const clause = statement.importClause;
      if (!clause) continue;
      if (clause.name) names.set(clause.name.text, { module, imported: 'default' });
      const bound = clause.namedBindings;
      if (bound && ts.isNamespaceImport(bound)) names.set(bound.name.text, { module, imported: '*' });
      if (bound && ts.isNamedImports(bound)) {
        for (const element of bound.elements) {
          names.set(element.name.text, { module, imported: (element.propertyName ?? element.name).text });
        }
      }
    } else if ((ts.isClassDeclaration(statement) || ts.isFunctionDeclaration(statement)) && statement.name) {
      names.set(statement.name.text, { module: '', imported: statement.name.text });
    } else if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) {
        for (const name of boundNames(ts, declaration.name)) names.set(name, { module: '', imported: name });
      }
    }
  }
  return names;
}

function boundNames(ts: typeof TS, name: TS.BindingName): string[] {
  if (ts.isIdentifier(name)) return [name.text];
  return name.elements.flatMap((element) => (ts.isOmittedExpression(element) ? [] : boundNames(ts, element.name)));
}

/** The decorator call of Nest's `@Module()` and its metadata: `AppModule`'s if several classes have one. */
function findModuleMetadata(ts: typeof TS, source: TS.SourceFile, bindings: Map<string, Binding>): { metadata?: TS.Expression } | undefined {
  const found: { name: string; metadata: TS.Expression | undefined }[] = [];
  for (const statement of source.statements) {
    if (!ts.isClassDeclaration(statement)) continue;
    for (const decorator of ts.getDecorators(statement) ?? []) {
      const call = decorator.expression;
      if (!ts.isCallExpression(call) || !ts.isIdentifier(call.expression)) continue;
      const binding = bindings.get(call.expression.text);
      if (binding?.module === '@nestjs/common' && binding.imported === 'Module') {
        found.push({ name: statement.name?.text ?? '', metadata: call.arguments[0] });
      }
    }
  }
  return found.find((candidate) => candidate.name === 'AppModule') ?? (found.length === 1 ? found[0] : undefined);
}

/**
 * The `name: value` member of an object literal; `'unknown'` when the name is there in another
 * form (`{ entities }`, a method, a computed key), `undefined` when it is not there.
 */
function member(ts: typeof TS, object: TS.ObjectLiteralExpression, name: string): TS.PropertyAssignment | 'unknown' | undefined {
  for (const candidate of object.properties) {
    const key = candidate.name;
    const named = !!key && (ts.isIdentifier(key) || ts.isStringLiteral(key)) && key.text === name;
    if (named && ts.isPropertyAssignment(candidate)) return candidate;
    if (named || (key && ts.isComputedPropertyName(key))) return 'unknown';
  }
  return undefined;
}

/** `.js` when the file's relative imports carry it (ES modules, `nodenext`), else none, as `nest new` writes them. */
function relativeImportSuffix(ts: typeof TS, source: TS.SourceFile): string {
  const relative = source.statements
    .filter((statement): statement is TS.ImportDeclaration => ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier))
    .map((statement) => (statement.moduleSpecifier as TS.StringLiteral).text)
    .filter((specifier) => specifier.startsWith('.'));
  return relative.some((specifier) => specifier.endsWith('.js')) ? '.js' : '';
}

/** What separates an element from the next one, keeping the layout it sits in (a new line and its indent, or a space). */
function separatorBefore(text: string, position: number): string {
  const lineStart = text.lastIndexOf('\n', position - 1) + 1;
  const before = text.slice(lineStart, position);
  return /^\s*$/.test(before) ? `\n${before}` : ' ';
}

function indentOf(text: string, position: number): string {
  const lineStart = text.lastIndexOf('\n', position - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart))![0];
}

/** Append `elements` (multi-line texts) to `imports: [...]`, creating the property if needed, one per line. */
function insertElements(
  source: TS.SourceFile,
  text: string,
  metadata: TS.ObjectLiteralExpression,
  array: TS.ArrayLiteralExpression | undefined,
  elements: string[],
): Edit {
  const unit = /\n( +|\t)\S/.exec(text)?.[1] ?? '  ';
  // The templates indent by two spaces; the file's own unit replaces them.
  const indented = (element: string, indent: string) =>
    element
      .split('\n')
      .map((line) => (line ? indent + line.replace(/^(?: {2})+/, (lead) => unit.repeat(lead.length / 2)) : line))
      .join('\n');
  if (!array) {
    const first = metadata.properties[0];
    const indent = first ? indentOf(text, first.getStart(source)) : indentOf(text, metadata.getStart(source)) + unit;
    const body = elements.map((element) => `${indented(element, indent + unit)},\n`).join('');
    const property = `imports: [\n${body}${indent}],`;
    if (first) return { start: first.getStart(source), end: first.getStart(source), text: `${property}\n${indent}` };
    return { start: metadata.getStart(source) + 1, end: metadata.getEnd() - 1, text: `\n${indent}${property}\n${indentOf(text, metadata.getStart(source))}` };
  }
  const propertyIndent = indentOf(text, array.getStart(source));
  const last = array.elements[array.elements.length - 1];
  if (!last) {
    const indent = propertyIndent + unit;
    const body = elements.map((element) => `${indented(element, indent)},\n`).join('');
    return { start: array.getStart(source), end: array.getEnd(), text: `[\n${body}${propertyIndent}]` };
  }
  const indent = indentOf(text, last.getStart(source));
  const sameLine = !text.slice(array.getStart(source), last.getStart(source)).includes('\n');
  if (sameLine) {
    // `imports: [A, B]` on one line: keep it one line per element from here on.
    const body = [...array.elements.map((element) => element.getText(source)), ...elements]
      .map((element) => `${indented(element, propertyIndent + unit)},\n`)
      .join('');
    return { start: array.getStart(source), end: array.getEnd(), text: `[\n${body}${propertyIndent}]` };
  }
  const afterLast = array.elements.hasTrailingComma ? text.indexOf(',', last.getEnd()) + 1 : last.getEnd();
  const body = elements.map((element) => `\n${indented(element, indent)},`).join('');
  return { start: afterLast, end: afterLast, text: array.elements.hasTrailingComma ? body : `,${body.replace(/,$/, '')}` };
}
