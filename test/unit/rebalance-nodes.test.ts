// A rebalance run of several nodes, without processes: the --subvols share syntax, the sum
// of the nodes' rows (state precedence, counts, the asking host's pid) and the status table.
import test from 'ava';
import { aggregate } from '../../brick/mgmt/rebalance.js';
import type { RebalanceRun, VolumeDef } from '../../brick/mgmt/store.js';
import { formatRebalance } from '../../client/cli/format.js';
import type { RebalanceNodeStatus } from '../../lib/mgmt/api.js';
import { formatSubvolShares, parseSubvolShares } from '../../lib/mgmt/rebalance.js';

const vol = { name: 'v' } as VolumeDef;
const run: RebalanceRun = {
  id: 'run-1', purpose: 'rebalance', mode: 'migrate', throttle: 'normal', layoutEpoch: 1, startedAt: '2026-01-01T00:00:00.000Z',
  nodes: [{ peer: 'a', host: '10.0.0.1' }, { peer: 'b', host: '10.0.0.2' }, { peer: 'c', host: '10.0.0.3' }],
};

function row(peer: string, host: string, over: Partial<RebalanceNodeStatus> = {}): RebalanceNodeStatus {
  return {
    mode: 'migrate', state: 'completed', startedAt: '2026-01-01T00:00:01.000Z', updatedAt: '2026-01-01T00:00:05.000Z',
    finishedAt: '2026-01-01T00:00:05.000Z', elapsedS: 4, dirsScanned: 3, dirsFixed: 1, filesScanned: 10, filesMoved: 4,
    filesFailed: 0, filesSkipped: 1, bytesMoved: 4096, filesTotal: 10, rateFilesPerS: 1, rateBytesPerS: 1024, etaS: 0,
    resumed: false, peer, host, pid: null, alive: false, connected: true, ...over,
  };
}

test('--subvols: NAME or NAME:I/N, comma separated; I below N', (t) => {
  const shares = [{ name: 'v-client-0', index: 0, of: 1 }, { name: 'v-replicate-1', index: 2, of: 3 }];
  t.is(formatSubvolShares(shares), 'v-client-0:0/1,v-replicate-1:2/3');
  t.deepEqual(parseSubvolShares('v-client-0:0/1,v-replicate-1:2/3'), shares);
  t.deepEqual(parseSubvolShares('v-client-4'), [{ name: 'v-client-4', index: 0, of: 1 }]);
  for (const bad of ['v-client-0:3/3', 'v-client-0:1/0', 'v-client-0:x/2', ':0/1']) {
    t.throws(() => parseSubvolShares(bad), { instanceOf: RangeError, message: /bad --subvols item/ }, bad);
  }
});

test('the sum of the rows: counts add up, directories counted once, this host\'s pid', (t) => {
  const rows = [
    row('a', '10.0.0.1'),
    row('b', '10.0.0.2', { self: true, filesMoved: 6, bytesMoved: 8192, elapsedS: 9, dirsScanned: 3, dirsFixed: 0 }),
    row('c', '10.0.0.3', { filesScanned: 0, filesMoved: 0, bytesMoved: 0, filesTotal: 0, dirsFixed: 2 }),
  ];
  const r = aggregate(vol, run, rows);
  t.like(r, {
    volume: 'v', runId: 'run-1', state: 'completed', filesMoved: 10, filesScanned: 20, bytesMoved: 12288, filesSkipped: 3,
    dirsScanned: 3, dirsFixed: 3, filesTotal: 20, elapsedS: 9, etaS: 0, pid: null, alive: false,
    startedAt: '2026-01-01T00:00:01.000Z', finishedAt: '2026-01-01T00:00:05.000Z',
  });
  t.is(r.nodes.length, 3);
});

test('the run\'s state: running while a node runs or has yet to start; then failed, stopped, completed', (t) => {
  const state = (...over: Array<Partial<RebalanceNodeStatus>>): string => aggregate(vol, run, over.map((o, i) => row(String(i), `h${i}`, o))).state;
  t.is(state({}, { state: 'running', alive: true, pid: 7 }, { state: 'failed' }), 'running');
  t.is(state({}, { state: 'not started' }), 'running', 'a node that has not started yet');
  t.is(state({}, { state: 'failed', error: 'boom' }, { state: 'stopped' }), 'failed');
  t.is(state({}, { state: 'stopped' }), 'stopped');
  t.is(aggregate(vol, { ...run, stopped: true }, [row('a', 'h'), row('b', 'h2', { state: 'not started' })]).state, 'stopped',
    'a node that never started a stopped run is stopped');
  const failed = aggregate(vol, run, [row('a', '10.0.0.1', { state: 'failed', error: 'the rebalance process died' }), row('b', '10.0.0.2', { self: true })]);
  t.is(failed.error, '10.0.0.1: the rebalance process died');
  const one = aggregate(vol, run, [row('a', 'localhost', { self: true, state: 'failed', error: 'alone' })]);
  t.is(one.error, 'alone', 'a single node\'s error as it is');
});

test('the status table: a row per node (the daemon asked is localhost), then the total', (t) => {
  const r = aggregate(vol, run, [
    row('a', '10.0.0.1', { state: 'running', alive: true, pid: 41, finishedAt: undefined, etaS: 3 }),
    row('b', '10.0.0.2', { self: true }),
    row('c', '10.0.0.3', { connected: false, state: 'not started', filesMoved: 0, filesScanned: 0, bytesMoved: 0 }),
  ]);
  const text = formatRebalance(r);
  t.regex(text, /^Rebalance of volume v, throttle normal, started .*, on 3 nodes\n/);
  t.regex(text, /\nNode +Rebalanced-files +size +scanned +failures +skipped +status +run time in h:m:s\n/);
  t.regex(text, /\n10\.0\.0\.1 +4 +4\.0 KiB +10 +0 +1 +running +0:00:04\n/);
  t.regex(text, /\nlocalhost +4 +4\.0 KiB +10 +0 +1 +completed +0:00:04\n/);
  t.regex(text, /\n10\.0\.0\.3 \(disconnected\) +0 +0 B +0 +0 +1 +not started +0:00:04\n/);
  t.regex(text, /\n-+ +-+ .*\ntotal +8 +8\.0 KiB +20 +0 +3 +running +0:00:04\n/);
  t.regex(text, /\nProcesses: 10\.0\.0\.1 pid 41\n/);
});
