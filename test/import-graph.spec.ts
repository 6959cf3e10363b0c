import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A file that imports, through others, a file importing it cannot be read (or loaded) on its own:
 * the library and the sample app have no import circle, type-only imports included.
 */
const repository = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function sourceFiles(folder: string): string[] {
  return readdirSync(folder).flatMap((name) => {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.spec.ts') ? [path] : [];
  });
}

/** The relative imports and re-exports of each file, `import type` included. */
function importGraph(root: string): Map<string, string[]> {
  const files = sourceFiles(root);
  const known = new Set(files);
  return new Map(
    files.map((file) => {
      const text = readFileSync(file, 'utf8');
      const targets = [...text.matchAll(/^(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)]
        .map((match) => resolve(dirname(file), match[1].replace(/\.js$/, '.ts')))
        .filter((target) => known.has(target));
      return [file, targets];
    }),
  );
}

/** The import circles (strongly connected components of more than one file, or a file importing itself), by path under `root`. */
function importCircles(root: string): string[][] {
  const graph = importGraph(root);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const circles: string[][] = [];
  const visit = (file: string) => {
    index.set(file, index.size);
    low.set(file, index.get(file)!);
    stack.push(file);
    for (const target of graph.get(file)!) {
      if (!index.has(target)) {
        visit(target);
        low.set(file, Math.min(low.get(file)!, low.get(target)!));
      } else if (stack.includes(target)) {
        low.set(file, Math.min(low.get(file)!, index.get(target)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component = stack.splice(stack.indexOf(file));
    if (component.length > 1 || graph.get(file)!.includes(file)) circles.push(component.map((path) => relative(root, path)).sort());
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return circles;
}

describe('imports', () => {
  it('form no circle in the library (src/)', () => {
    expect(importCircles(join(repository, 'src'))).toEqual([]);
  });

  it('form no circle in the sample app', () => {
    expect(importCircles(join(repository, 'sample-app/src'))).toEqual([]);
  });

  it('are seen by this check, type-only ones included', () => {
    const graph = importGraph(join(repository, 'src'));
    const config = join(repository, 'src/auth.config.ts');
    expect(graph.get(config)).toContain(join(repository, 'src/auth.options.ts'));
    expect(graph.get(join(repository, 'src/entries/throttle.ts'))).toContain(join(repository, 'src/login-throttle.ts'));
  });
});
