// client/cli/live.ts off a terminal: each changed report once under `== TIME`, plain status lines.
import test from 'ava';
import { statusLine, watch } from '../../client/cli/live.js';

function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const stream = { isTTY, rows: 24, columns: 80, write: (s: string) => { out += s; return true; }, on: () => stream, once: () => stream, removeListener: () => stream } as unknown as NodeJS.WriteStream;
  return { stream, text: () => out };
}

test('watch off a terminal: a report is printed when it changes, until a frame is done', async (t) => {
  const { stream, text } = fakeStream(false);
  const frames = ['a: 2', 'a: 2', 'a: 1', 'a: 0'];
  let i = 0;
  await watch(async () => {
    const f = frames[i++]!;
    return { text: `${f}\n`, done: f === 'a: 0' };
  }, { intervalMs: 1, stream, now: () => new Date(0) });
  t.is(i, 4);
  t.is(text(), '== 1970-01-01T00:00:00.000Z\na: 2\n== 1970-01-01T00:00:00.000Z\na: 1\n== 1970-01-01T00:00:00.000Z\na: 0\n');
});

test('watch: an error of a look ends it and is thrown on', async (t) => {
  const { stream } = fakeStream(false);
  await t.throwsAsync(watch(async () => { throw new Error('daemon gone'); }, { intervalMs: 1, stream }), { message: 'daemon gone' });
});

test('statusLine off a terminal: every update and note is a line', async (t) => {
  const { stream, text } = fakeStream(false);
  const s = await statusLine(stream);
  s.update('step 1');
  s.note('warning: x');
  s.update('step 2');
  s.done();
  t.is(text(), 'step 1\nwarning: x\nstep 2\n');
});

test('statusLine on a terminal: the status is redrawn in place, notes stay', async (t) => {
  const { stream, text } = fakeStream(true);
  const s = await statusLine(stream);
  s.update('step 1');
  s.note('warning: x');
  s.update('step 2');
  s.done();
  // eslint-disable-next-line no-control-regex
  const plain = text().replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
  t.regex(text(), /\x1b\[/); // eslint-disable-line no-control-regex
  t.true(plain.includes('warning: x'));
  t.true(plain.trimEnd().endsWith('step 2'), JSON.stringify(plain));
});
