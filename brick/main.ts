import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { graphFromVolfile } from '../lib/graph.js';
import './xlators/index.js';

/**
 * The brick process (role of glusterfsd): builds the brick graph
 * (protocol/server → features/locks → storage/posix) from a brick volfile and serves it.
 *   node dist/brick/main.js --volfile FILE [--pidfile FILE]
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { volfile: { type: 'string' }, pidfile: { type: 'string' } } });
  if (!values.volfile) {
    process.stderr.write('usage: brick --volfile FILE [--pidfile FILE]\n');
    process.exit(2);
  }
  const graph = graphFromVolfile(fs.readFileSync(values.volfile, 'utf8'), values.volfile);
  await graph.init();
  if (values.pidfile) fs.writeFileSync(values.pidfile, `${process.pid}\n`);
  process.stderr.write(`brick ${graph.top.name} serving (pid ${process.pid})\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    graph.fini().finally(() => {
      if (values.pidfile) fs.rmSync(values.pidfile, { force: true });
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: Error) => {
  process.stderr.write(`brick failed to start: ${e.message}\n`);
  process.exit(1);
});
