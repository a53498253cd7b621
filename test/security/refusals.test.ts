// What a stranger gets from a brick or the management daemon: a web page (any request
// carrying Origin, as browsers send on every WebSocket handshake) is refused before the
// upgrade; a client asking for a subvolume that is not exported learns nothing of what is.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatLogText } from '../../lib/log.js';
import { startDistribute } from '../helpers/cluster.js';
import { startDaemon } from '../helpers/daemon.js';
import { RawBrickClient } from '../helpers/wire.js';

test('a brick refuses a WebSocket upgrade that carries an Origin (a browser) with 403; our clients send none', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const browsers: Record<string, string>[] = [{ origin: 'http://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }];
  for (const headers of browsers) {
    const e = await t.throwsAsync(RawBrickClient.connect(brick.port, brick.dir, { headers }));
    t.regex(e!.message, /Unexpected server response: 403/, JSON.stringify(headers));
  }
  const ok = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => ok.close());
  t.is((await ok.call('lookup', { path: '/' })).err, undefined);
});

test('a wrong subvolume name is refused with the same words as any refusal, naming nothing exported', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const answers = [];
  for (const want of ['/not/exported', '', brick.dir + '/', path.dirname(brick.dir)]) {
    const c = await RawBrickClient.connect(brick.port, want, { skipHello: true });
    t.teardown(() => c.close());
    answers.push({ code: await c.closed, reason: c.closeReason });
  }
  for (const a of answers) {
    t.deepEqual(a, { code: 4003, reason: 'refused' });
    t.false(a.reason!.includes(brick.dir));
  }
  // The brick's own log says why, for its administrator.
  t.regex(formatLogText(fs.readFileSync(brick.log, 'utf8')), /asked for subvolume "\/not\/exported", not exported here/);
});

test('the management daemon refuses requests from browsers (Origin, Sec-Fetch-Site) with 403 and changes nothing', async (t) => {
  const d = await startDaemon(t);
  const brick = fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-sec-'));
  t.teardown(() => fs.rmSync(brick, { recursive: true, force: true }));
  t.is((await d.http('/v1/health')).status, 200);
  t.is((await d.http('/v1/health', { headers: { origin: 'http://evil.example' } })).status, 403);
  t.is((await d.http('/v1/volumes', { headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-dest': 'empty' } })).status, 403);
  const body = JSON.stringify({ name: 'pwn', bricks: [`localhost:${brick}`], force: true });
  const posted = await d.http('/v1/volumes', { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'text/plain' }, body });
  t.is(posted.status, 403);
  t.regex(posted.text, /browsers are refused/);
  const info = await d.cli(['volume', 'info', '--json']);
  t.is(info.code, 0, info.stderr);
  t.false(info.stdout.includes('pwn'));
});
