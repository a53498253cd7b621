// The contract between the management daemon and the self-heal daemon it runs on its host
// (client/shd/main.ts; GlusterFS's glustershd): one process per host for every started
// replicated volume with a brick there and cluster.self-heal-daemon on.
//
//   node dist/client/shd/main.js --config FILE --pidfile FILE
//
// The config file (ShdConfig, JSON, replaced atomically, root's only: it holds the volumes'
// service credentials) lists the volumes with their service
// volfile and this host's bricks of each. SIGHUP: read it again (volumes added, dropped, or
// with a changed volfile are rebuilt; the others go on). SIGTERM: stop. The process writes
// its pid to the pidfile and exits by itself once the pidfile no longer names it (its state
// directory was removed, or another one was started), so it never outlives its daemon's state.

/** What the self-heal daemon of a host heals. */
export interface ShdConfig {
  volumes: ShdVolume[];
}

/** One volume the self-heal daemon heals. */
export interface ShdVolume {
  name: string;
  /** The volume's service volfile text (the service credential: reading the heal index needs it); the daemon reaches every brick through it. */
  volfile: string;
  /** This host's bricks of the volume (HOST:/path): the daemon crawls their heal index only. */
  bricks: string[];
}

/** How often the self-heal daemon checks that its pidfile still names it. */
export const SHD_PIDFILE_CHECK_MS = 1000;
