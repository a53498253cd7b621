import fs from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { DEFAULT_FILES, DEFAULT_ROUNDS, DEFAULT_RUNTIME_S, DEFAULT_SIZE, benchOptions, type RawBenchOptions } from '../../bench/options.js';
import { formatTable, toJson, toSvg } from '../../bench/report.js';
import { BenchRun } from '../../bench/run.js';
import type { GlobalArgs } from '../api.js';
import { statusLine } from '../live.js';

type BenchArgs = GlobalArgs & RawBenchOptions;

const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;

export const command: CommandModule<GlobalArgs, BenchArgs> = {
  command: 'bench <dir>',
  describe: 'Measure a directory (a mount) with fio and small-file workloads, side by side with others',
  builder: (y: Argv<GlobalArgs>) => y
    .usage('$0 bench DIR [--compare DIR...] [--json FILE] [--svg FILE]')
    .positional('dir', { type: 'string', demandOption: true, describe: 'Directory to measure first; ratios are against it' })
    .option('compare', { type: 'string', array: true, describe: 'More directories to measure in the same run, one after the other' })
    .option('size', { type: 'string', default: DEFAULT_SIZE, describe: 'fio sequential file size (K/M/G = 1024-based); the random file is half of it' })
    // No `type: 'number'` on these: yargs would turn "abc" into NaN and the message could not quote it.
    .option('runtime', { requiresArg: true, default: DEFAULT_RUNTIME_S, describe: 'Seconds each fio random job runs' })
    .option('files', { requiresArg: true, default: DEFAULT_FILES, describe: 'Number of files in the small-file set' })
    .option('rounds', { requiresArg: true, default: DEFAULT_ROUNDS, describe: 'Run everything this many times, directories alternating, and report medians' })
    .option('skip', { type: 'string', choices: ['fio', 'smallfile'] as const, describe: 'Leave out one part' })
    .option('json', { type: 'string', describe: 'Also write the results as JSON (schema: docs/bench.md)' })
    .option('svg', { type: 'string', describe: 'Also draw a bar chart, speeds relative to the first DIR' })
    .option('drop-caches', { type: 'boolean', default: true, describe: 'Drop the page cache of the whole machine between each write and its read (needs root); --no-drop-caches keeps it' })
    .example('$0 bench /mnt/gluster --compare /mnt/vol1 /var/tmp', 'GlusterFS first, so every ratio is against it')
    .example('$0 bench /mnt/vol1 --json b.json --svg b.svg', 'keep the figures and a chart')
    .example('$0 bench /mnt/vol1 --skip fio --files 1000', 'only the small-file workloads')
    .example('$0 bench /mnt/gluster --compare /mnt/vol1 --rounds 3', 'medians of three rounds, on a noisy machine')
    .example('$0 bench /mnt/vol1 --no-drop-caches', 'on a machine others use: leave its page cache alone')
    .epilog('Ratios in the table are the speed relative to the first DIR: other/first for rates (MiB/s, IOPS, ops/s), '
      + 'first/other for times (s), so above 1 always means faster than the first DIR. Each DIR gets a scratch '
      + 'subdirectory brickfs-bench-* that is removed afterwards. The page cache of the whole machine is '
      + 'dropped between writes and reads (echo 3 > /proc/sys/vm/drop_caches, as root; --no-drop-caches to skip). fio comes from Debian: apt-get install fio.') as unknown as Argv<BenchArgs>,
  handler: async (argv: ArgumentsCamelCase<BenchArgs>) => {
    const o = benchOptions(argv);
    const status = await statusLine(process.stderr);
    const run = new BenchRun(o, {
      progress: (line) => status.update(line),
      warn: (line) => status.note(`warning: ${line}`),
    });
    await run.preflight();
    // An interrupted run must not leave fio running or a 512 MiB scratch file behind. The
    // cleanup is synchronous up to process.exit: more signals wait and cannot cut it short.
    const onSignal = (sig: keyof typeof SIGNALS): void => {
      status.done();
      process.stderr.write(`bench: interrupted by ${sig}; removing scratch directories (SIGKILL would leave them)\n`);
      const left = run.abort();
      if (left.length === 0) process.stderr.write('bench: scratch directories removed\n');
      for (const l of left) process.stderr.write(`bench: could not remove ${l}; remove it by hand\n`);
      process.exit(128 + SIGNALS[sig]);
    };
    const handlers = (Object.keys(SIGNALS) as Array<keyof typeof SIGNALS>).map((sig) => {
      const h = (): void => onSignal(sig);
      process.on(sig, h);
      return () => process.off(sig, h);
    });
    try {
      const report = await run.run();
      status.done();
      process.stdout.write(formatTable(report));
      if (o.json) {
        fs.writeFileSync(o.json, toJson(report));
        process.stderr.write(`bench: wrote ${o.json}\n`);
      }
      if (o.svg) {
        fs.writeFileSync(o.svg, toSvg(report));
        process.stderr.write(`bench: wrote ${o.svg}\n`);
      }
    } finally {
      for (const off of handlers) off();
    }
  },
};
