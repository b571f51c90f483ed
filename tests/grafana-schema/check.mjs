// Type-checks every dashboard of grafana/dashboards against @grafana/schema's Dashboard
// type: each JSON file becomes an object literal typed as a Dashboard, so that a wrong
// type, a misspelt or unknown property, or a value outside an enum fails `tsc`.
// Run by ./scripts/test after `npm ci` in this folder.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dashboards = join(here, '..', '..', 'grafana', 'dashboards');
const generated = join(here, 'generated');
rmSync(generated, { recursive: true, force: true });
mkdirSync(generated);

const files = readdirSync(dashboards).filter((f) => f.endsWith('.json'));
for (const [i, file] of files.entries()) {
  const json = readFileSync(join(dashboards, file), 'utf8');
  JSON.parse(json); // valid JSON first, with a clear error if not
  writeFileSync(
    join(generated, `dashboard_${i}.ts`),
    [
      `// ${file}, checked against Grafana's schema.`,
      "import type { Dashboard } from '@grafana/schema';",
      "// Grafana's JSON spells enum members as their string values.",
      'type Json<T> = T extends string ? `${T}` : T extends (infer U)[] ? Json<U>[] : T extends object ? { [K in keyof T]: Json<T[K]> } : T;',
      `export const dashboard: Json<Dashboard> = ${json};`,
      '',
    ].join('\n'),
  );
}

let failed = 0;
try {
  execFileSync(join(here, 'node_modules', '.bin', 'tsc'), ['-p', here], { stdio: 'inherit' });
} catch {
  failed = files.length;
}
console.log(`grafana schema: ${files.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
