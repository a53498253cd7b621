// The heal process the management daemon runs for `volume heal` (the role of GlusterFS's
// self-heal daemon, run on demand): the volume's client graph with the service credential,
// which the daemon alone holds, so heal may read the heal index (indexlist). The request
// comes as JSON on the command line; the report goes to stdout as JSON.
//   node dist/client/heal-main.js --volfile FILE --request JSON
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { runHeal, type HealRequest } from './heal.js';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { volfile: { type: 'string' }, request: { type: 'string' } }, strict: true });
  if (!values.volfile || !values.request) {
    process.stderr.write('heal: usage: node dist/client/heal-main.js --volfile FILE --request JSON\n');
    return 2;
  }
  const report = await runHeal(fs.readFileSync(values.volfile, 'utf8'), JSON.parse(values.request) as HealRequest);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  return 0;
}

main().then((code) => process.exit(code), (e: Error) => {
  process.stderr.write(`heal: ${e.message}\n`);
  process.exit(1);
});
