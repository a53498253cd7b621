// The self-heal daemon (GlusterFS's glustershd): one process per host, started by the
// management daemon (brick/mgmt/self-heal-daemon.ts) for the replicated volumes with a brick
// on the host. For each volume it runs the client graph without FUSE and heals what the heal
// index of this host's bricks lists: at start, every cluster.heal-timeout seconds, and at
// once when a replica comes up (a brick restarted, a host back): CHILD_UP, as afr_notify
// starts glustershd's index heal. The command line and config file are the contract in
// lib/mgmt/self-heal.ts.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildGraph, type Graph } from '../../lib/graph.js';
import { Logger } from '../../lib/log.js';
import { SHD_PIDFILE_CHECK_MS, type ShdConfig, type ShdVolume } from '../../lib/mgmt/self-heal.js';
import { parseVolfile } from '../../lib/volfile/parse.js';
import { replicaName } from '../heal.js';
import { Replicate } from '../xlators/cluster/replicate/index.js';
import '../xlators/index.js';

// Its log is the record of what was healed (glustershd.log): heals are logged unless told otherwise.
if (process.env.BRICKFS_LOG === undefined) Logger.setLevel('info');
const log = new Logger('shd');

/** How long after a replica comes up the crawl starts (the other replicas of the set come up in the same moment). */
const CHILD_UP_DELAY_MS = 200;
/** How long a stop waits for the entry in hand to be healed. */
const STOP_GRACE_MS = 5000;

function usage(msg: string): never {
  process.stderr.write(`shd: ${msg}\nusage: node dist/client/shd/main.js --config FILE --pidfile FILE\n`);
  process.exit(2);
}

/** One replica set of a volume with the replicas whose index this host crawls. */
interface HealedSet {
  set: Replicate;
  local: number[];
}

/** The heal loop of one volume: its graph, its timer, one crawl at a time. */
class VolumeHealer {
  private timer: NodeJS.Timeout | undefined;
  private upTimer: NodeJS.Timeout | undefined;
  private crawling: Promise<void> | undefined;
  private again = false;
  private closed = false;

  private constructor(readonly def: ShdVolume, private readonly graph: Graph, private readonly sets: HealedSet[]) {}

  /** Builds the volume's graph, connects, and starts healing. */
  static async open(def: ShdVolume): Promise<VolumeHealer> {
    const file = `${def.name}.vol`;
    const graph = buildGraph(parseVolfile(def.volfile, file), file);
    const mine = new Set(def.bricks);
    const sets = [...graph.byName.values()]
      .filter((x): x is Replicate => x instanceof Replicate)
      .map((set) => ({ set, local: set.children.flatMap((c, i) => (mine.has(replicaName(c)) ? [i] : [])) }))
      .filter((s) => s.local.length > 0 && s.set.selfHealDaemon);
    const h = new VolumeHealer(def, graph, sets);
    for (const s of sets) s.set.childUpListeners.add(() => h.soon());
    await graph.init();
    if (sets.length === 0) log.warn(`volume ${def.name}: none of ${def.bricks.join(' ')} is a replica with self-heal-daemon on here; nothing to heal`);
    else log.info(`volume ${def.name}: healing the index of ${def.bricks.join(' ')} every ${h.intervalS} s and when a replica comes up`);
    h.crawl();
    return h;
  }

  private get intervalS(): number {
    return Math.min(...this.sets.map((s) => s.set.healTimeoutS));
  }

  /** Crawl shortly: a replica came up. */
  private soon(): void {
    if (this.closed) return;
    clearTimeout(this.upTimer);
    this.upTimer = setTimeout(() => this.crawl(), CHILD_UP_DELAY_MS);
  }

  /** Crawls now, or right after the crawl in progress; then waits heal-timeout for the next. */
  crawl(): void {
    if (this.closed || this.sets.length === 0) return;
    if (this.crawling) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.crawling = this.crawlOnce().finally(() => {
      this.crawling = undefined;
      if (this.closed) return;
      if (this.again) {
        this.again = false;
        this.crawl();
      } else {
        this.timer = setTimeout(() => this.crawl(), this.intervalS * 1000);
      }
    });
  }

  private async crawlOnce(): Promise<void> {
    for (const { set, local } of this.sets) {
      if (this.closed) return;
      try {
        const { healed, splitBrain } = await set.heal.healIndexed(local);
        if (healed > 0) log.info(`volume ${this.def.name}: ${set.name}: healed ${healed} entr${healed === 1 ? 'y' : 'ies'}`);
        if (splitBrain.length > 0) log.warn(`volume ${this.def.name}: ${set.name}: in split-brain (\`brickfs volume heal ${this.def.name} split-brain POLICY FILE\`): ${splitBrain.join(' ')}`);
      } catch (e) {
        log.warn(`volume ${this.def.name}: ${set.name}: crawl failed: ${(e as Error).message}`);
      }
    }
  }

  /** Stops healing (after the entry in hand) and disconnects. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.upTimer);
    await this.crawling;
    await this.graph.fini();
  }
}

function readConfig(file: string): ShdConfig {
  const c = JSON.parse(fs.readFileSync(file, 'utf8')) as ShdConfig;
  if (!c || !Array.isArray(c.volumes)) throw new Error(`${file}: no "volumes" list`);
  return c;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' }, pidfile: { type: 'string' } }, strict: true });
  if (!values.config || !values.pidfile) usage('--config and --pidfile are required');
  const configFile = path.resolve(values.config);
  const pidfile = path.resolve(values.pidfile);
  fs.mkdirSync(path.dirname(pidfile), { recursive: true });
  fs.writeFileSync(pidfile, `${process.pid}\n`);

  const healers = new Map<string, VolumeHealer>();
  let queue: Promise<void> = Promise.resolve();
  let stopping = false;
  /** Brings the running volumes in line with the config file. */
  const reload = (): void => {
    queue = queue.then(async () => {
      if (stopping) return;
      let config: ShdConfig;
      try {
        config = readConfig(configFile);
      } catch (e) {
        log.error(`cannot read ${configFile}: ${(e as Error).message}; going on with the volumes as they were`);
        return;
      }
      const wanted = new Map(config.volumes.map((v) => [v.name, v]));
      for (const [name, h] of [...healers]) {
        const w = wanted.get(name);
        if (w && w.volfile === h.def.volfile && w.bricks.join(' ') === h.def.bricks.join(' ')) continue;
        healers.delete(name);
        await h.close();
        if (!w) log.info(`volume ${name}: no longer healed here`);
      }
      for (const [name, v] of wanted) {
        if (healers.has(name)) continue;
        try {
          healers.set(name, await VolumeHealer.open(v));
        } catch (e) {
          log.error(`volume ${name}: cannot heal it: ${(e as Error).message}`);
        }
      }
    });
  };
  const stop = (why: string): void => {
    if (stopping) return;
    log.info(`stopping (${why})`);
    // A crawl waiting on a brick that does not answer must not keep a stopped daemon alive.
    setTimeout(() => process.exit(0), STOP_GRACE_MS).unref();
    queue = queue.then(async () => {
      stopping = true;
      await Promise.all([...healers.values()].map((h) => h.close().catch(() => undefined)));
      process.exit(0);
    });
  };
  process.on('SIGHUP', reload);
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  setInterval(() => {
    let pid: number | undefined;
    try {
      pid = Number(fs.readFileSync(pidfile, 'utf8').trim());
    } catch { /* gone */ }
    if (pid !== process.pid) stop(`${pidfile} no longer names this process`);
  }, SHD_PIDFILE_CHECK_MS).unref();
  // The pidfile check is unref'd: this keeps the process up while it has no volume.
  setInterval(() => undefined, 1 << 30);
  log.info(`self-heal daemon started (pid ${process.pid}, config ${configFile})`);
  reload();
}

main().catch((e: Error) => {
  log.error(e.stack ?? e.message);
  process.exit(1);
});
