import fs from 'node:fs';
import path from 'node:path';
import { graphFromVolfile } from '../lib/graph.js';
import { InodeTable } from '../lib/inode.js';
import { Logger } from '../lib/log.js';
import { formatServer } from '../lib/mgmt/client.js';
import { serveStats } from '../lib/stats-socket.js';
import { FuseBridge } from './fuse/bridge.js';
import { LowLevelBridge } from './fuse/lowlevel-bridge.js';
import { ActiveGraph, VolfileWatcher, type VolfileSource } from './graph-switch.js';
import { isMounted, mountPidfile, mountRunFile } from './mount-table.js';
import './xlators/index.js';

const log = new Logger('mount');

export interface MountOptions {
  volfileText: string;
  volfileName: string;
  /** Shown in /proc/mounts: "host:/vol" or the volfile path. */
  source: string;
  mountpoint: string;
  extraOptions?: string[];
  /** Kernel cache timeouts in seconds (mount -o attribute-timeout=, entry-timeout=, negative-timeout=). */
  attrTimeoutS?: number;
  entryTimeoutS?: number;
  negativeTimeoutS?: number;
  /** The kernel's writeback cache (mount -o writeback-cache). */
  writebackCache?: boolean;
  /** The daemon and volume the volfile came from: the mount follows its new versions. */
  watch?: VolfileSource;
}

/** A running mount: the active graph, the FUSE bridge on top of it, the volfile watcher. */
export class MountedVolume {
  private stopping?: Promise<void>;
  private watcher?: NodeJS.Timeout;
  private volfileWatcher?: VolfileWatcher;

  private constructor(readonly graphs: ActiveGraph, readonly bridge: FuseBridge | LowLevelBridge, readonly mountpoint: string) {}

  /** Builds the graph, connects to the bricks and mounts; nothing stays mounted on failure. */
  static async start(o: MountOptions): Promise<MountedVolume> {
    // One inode table for the mount: every graph it serves from (graph-switch) shares it, so
    // open files and the translators' state on inodes carry over a switch.
    const graph = graphFromVolfile(o.volfileText, o.volfileName, new InodeTable());
    const st = await fs.promises.stat(o.mountpoint).catch(() => undefined);
    if (!st?.isDirectory()) throw new Error(`mount point ${o.mountpoint} does not exist or is not a directory`);
    await graph.init();
    const graphs = new ActiveGraph(graph, o.watch?.version);
    // libfuse 3's low-level API on the main thread (client/fuse/lowlevel-bridge.ts) by default;
    // BRICKFS_FUSE=native, or no native/fuse-ll built (no libfuse3-dev at install): fuse-native's
    // high-level bridge over libfuse 2, a thread handoff per request.
    const Bridge = process.env.BRICKFS_FUSE === 'native' || !LowLevelBridge.available() ? FuseBridge : LowLevelBridge;
    const bridge = new Bridge(graphs, path.resolve(o.mountpoint), {
      fsname: o.source, extraOptions: o.extraOptions,
      attrTimeoutS: o.attrTimeoutS, entryTimeoutS: o.entryTimeoutS, negativeTimeoutS: o.negativeTimeoutS,
      writebackCache: o.writebackCache,
    });
    try {
      await bridge.mount();
    } catch (e) {
      await graphs.fini();
      throw new Error(`FUSE mount of ${o.mountpoint} failed: ${(e as Error).message}`);
    }
    const m = new MountedVolume(graphs, bridge, path.resolve(o.mountpoint));
    fs.writeFileSync(mountPidfile(o.mountpoint), `${process.pid}\n`);
    // For the daemon's /metrics: "mounts on this host" (lib/stats-socket.ts says why a socket).
    const who = { volume: o.watch?.volume ?? o.volfileName, source: o.source, mountpoint: m.mountpoint };
    serveStats('mount', (p) => (p === '/stats' ? { ...who, ...graphs.stats() } : undefined), (msg) => log.warn(msg));
    if (o.watch) {
      const [first, ...others] = o.watch.servers.map(formatServer);
      log.info(`serving volfile version ${o.watch.version} (graph ${graphs.graphId}); following ${o.watch.volume} at ${first}${others.length ? ` (then ${others.join(', ')})` : ''}`);
      m.volfileWatcher = new VolfileWatcher(o.watch, graphs, o.volfileText);
      m.volfileWatcher.start();
    }
    // Unmounted from outside (umount, fusermount -u): stop serving. Logged whatever the log
    // level, as the line saying it was mounted is.
    m.watcher = setInterval(() => {
      if (isMounted(m.mountpoint)) return;
      log.always(`${m.mountpoint} was unmounted from outside (umount); mount process ${process.pid} exits`);
      void m.stop().then(() => process.exit(0));
    }, 1000);
    m.watcher.unref();
    return m;
  }

  /** Unmounts (if still mounted) and disconnects from the bricks. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.watcher);
      this.volfileWatcher?.stop();
      if (isMounted(this.mountpoint)) {
        await this.bridge.unmount().catch((e: Error) => log.error(`unmount: ${e.message}`));
      }
      await this.graphs.fini();
      // The run directory keeps the log of an ended mount (as GlusterFS keeps its mount logs),
      // not the volfile copy `brickfs mount` made for it.
      fs.rmSync(mountPidfile(this.mountpoint), { force: true });
      fs.rmSync(mountRunFile(this.mountpoint, 'vol'), { force: true });
    })();
    return this.stopping;
  }
}
