#!/usr/bin/env node
// Prints the traces of span files (diagnostics.trace without an endpoint writes one beside
// each mount's and brick's log, NAME.spans.jsonl) as trees, a process's spans under the
// spans of the process that called it. Needs `npm run build`. docs/operations.md, "Tracing".
//   node scripts/span-tree.mjs FILE... [--trace TRACE_ID] [--root 'fuse write']
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { trace: { type: 'string' }, root: { type: 'string' } } });
if (positionals.length === 0) {
  process.stderr.write('usage: node scripts/span-tree.mjs FILE... [--trace TRACE_ID] [--root NAME]\n');
  process.exit(2);
}
const { byTrace, formatTrace, readSpans } = await import(new URL('../dist/lib/trace-tree.js', import.meta.url).href);
for (const [id, spans] of byTrace(readSpans(positionals))) {
  if (values.trace && id !== values.trace) continue;
  if (values.root && !spans.some((s) => s.name === values.root && s.parentId === undefined)) continue;
  process.stdout.write(`trace ${id}\n${formatTrace(spans)}\n\n`);
}
