#!/usr/bin/env node
// Writes lib/mgmt/volume-options.generated.ts (the `volume set` table) from the option schemas
// of the built translators in dist/ (run after tsc: `npm run build` does). Exit 0 when the
// committed table already says what the schemas say; otherwise it is rewritten and the exit
// is 1, so the build stops until it is run again with the new table compiled in. With
// --check nothing is written. docs/options.md.
import fs from 'node:fs';

const root = new URL('../', import.meta.url);
const target = new URL('lib/mgmt/volume-options.generated.ts', root);
const check = process.argv.includes('--check');

await import(new URL('dist/client/xlators/index.js', root).href);
await import(new URL('dist/brick/xlators/index.js', root).href);
const { knownXlatorTypes, lookupXlator } = await import(new URL('dist/lib/registry.js', root).href);
const { volumeOptionTable, formatVolumeOptionTable } = await import(new URL('dist/lib/mgmt/option-table.js', root).href);

let text;
try {
  text = formatVolumeOptionTable(volumeOptionTable(knownXlatorTypes().map((type) => [type, lookupXlator(type)])));
} catch (e) {
  process.stderr.write(`gen-volume-options: ${e.message}\n`);
  process.exit(1);
}
const old = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
if (old === text) process.exit(0);
const rel = 'lib/mgmt/volume-options.generated.ts';
if (check) {
  process.stderr.write(`gen-volume-options: ${rel} differs from the translators' option schemas; run node scripts/gen-volume-options.mjs and commit it\n`);
  process.exit(1);
}
fs.writeFileSync(target, text);
process.stderr.write(`gen-volume-options: ${rel} did not match the translators' option schemas and has been rewritten; run \`npm run build\` again (and commit the file)\n`);
process.exit(1);
