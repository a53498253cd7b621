import test from 'ava';
import { formatRatio, formatTable, logAxis, medianResults, formatValue, speedRatio, toJson, toSvg, workloadSection, workloadsOf, type BenchReport } from '../../client/bench/report.js';
import { WORKLOAD_KEYS, WORKLOADS, type Results } from '../../client/bench/workloads.js';

/** Results where every workload of dir `b` is `factor` times as fast as dir `a`'s (times shrink, rates grow). */
function results(factor: number): Results {
  const r: Results = {};
  for (const k of WORKLOAD_KEYS) {
    const w = WORKLOADS[k];
    const base = w.unit === 's' ? 2 : 1000;
    r[k] = { value: w.better === 'higher' ? base * factor : base / factor, unit: w.unit };
  }
  return r;
}

function report(dirs: Array<{ dir: string; fstype?: string; factor: number }>): BenchReport {
  return {
    version: 1,
    started: '2025-01-01T00:00:00.000Z',
    finished: '2025-01-01T00:01:00.000Z',
    host: { cpus: 2, kernel: '6.1.0' },
    options: { sizeBytes: 512 << 20, randSizeBytes: 256 << 20, runtimeSeconds: 15, files: 4000, skipped: [], untarFiles: 2413, rounds: 1 },
    workloads: workloadSection(workloadsOf([])),
    dirs: dirs.map((d) => ({ dir: d.dir, fstype: d.fstype ?? 'ext4', results: results(d.factor) })),
  };
}

test('ratio: above 1 means faster than the first, for rates and for times alike', (t) => {
  t.is(speedRatio('higher', 100, 250), 2.5, 'a rate: other/first');
  t.is(speedRatio('lower', 2, 0.5), 4, 'a time: first/other');
  t.is(speedRatio('lower', 1, 4), 0.25, 'slower takes longer');
  t.is(speedRatio('higher', 100, 100), 1);
  t.is(speedRatio('higher', 0, 5), undefined, 'no ratio against a zero');
  t.is(speedRatio('lower', 1, 0), undefined);
  t.is(speedRatio('higher', undefined, 5), undefined, 'missing figure');
  t.is(speedRatio('higher', 1, Number.NaN), undefined);
});

test('rounds: each workload is the median of its rounds, the mean of the middle two for an even count', (t) => {
  const m = (value: number) => ({ value, unit: 'MiB/s' as const });
  const s = (value: number) => ({ value, unit: 's' as const });
  t.deepEqual(medianResults([{ 'seq-write': m(300), untar: s(9) }, { 'seq-write': m(100), untar: s(4) }, { 'seq-write': m(200), untar: s(5) }]),
    { 'seq-write': m(200), untar: s(5) }, 'an outlier round does not move the figure');
  t.deepEqual(medianResults([{ 'rand-read': { value: 10, unit: 'IOPS' } }, { 'rand-read': { value: 30, unit: 'IOPS' } }]), { 'rand-read': { value: 20, unit: 'IOPS' } });
  t.deepEqual(medianResults([{ untar: s(3) }, {}]), { untar: s(3) }, 'a workload missing from a round is left out of it');
  t.deepEqual(medianResults([results(1)]), results(1), 'one round is its own figures');
});

test('values keep three significant digits and never use exponents', (t) => {
  t.is(formatValue(359.4), '359');
  t.is(formatValue(77012.6), '77013');
  t.is(formatValue(10.61), '10.6');
  t.is(formatValue(6.3), '6.30');
  t.is(formatValue(0.0213), '0.021');
  t.is(formatValue(Number.NaN), '-');
  t.is(formatRatio(0.6934), '0.69x');
  t.is(formatRatio(undefined), 'n/a');
  t.is(formatRatio(250), '250x');
});

test('table: one row per workload with unit and direction, one column per directory, ratios against the first', (t) => {
  const text = formatTable(report([{ dir: '/tmp/local', factor: 1 }, { dir: '/mnt/brickfs', fstype: 'fuse.brickfs', factor: 2 }, { dir: '/mnt/gluster', fstype: 'fuse.glusterfs', factor: 0.5 }]));
  const lines = text.split('\n');
  t.regex(lines[0]!, /^workload\s+unit\s+better\s+\/tmp\/local\s+\/mnt\/brickfs\s+\/mnt\/gluster$/);
  t.regex(lines[1]!, /\[ext4\]\s+\[fuse\.brickfs\]\s+\[fuse\.glusterfs\]$/);
  for (const k of WORKLOAD_KEYS) {
    const row = lines.find((l) => l.startsWith(`${WORKLOADS[k].label} `));
    t.truthy(row, k);
    t.regex(row!, new RegExp(`\\s${WORKLOADS[k].unit.replace('/', '\\/')}\\s+${WORKLOADS[k].better}\\s`), `${k}: unit and direction`);
    // Twice as fast shows 2.00x and half as fast 0.50x, whether the figure is a time or a rate.
    t.regex(row!, /\(2\.00x\)\s+\S+ \(0\.50x\)$/, `${k}: ratios`);
    t.is(row!.match(/\(/g)?.length, 2, `${k}: no ratio in the first column`);
  }
  t.regex(text, /untar \.\.\. rm -rf: npm's sources, 2413 files/);
  t.regex(text, /first\/other/, 'the footer states the convention for times');
  t.regex(text, /above 1 always means faster than the first column/);
  const starts = lines.slice(2, 2 + WORKLOAD_KEYS.length).map((l) => l.indexOf('(2.00x)'));
  t.is(new Set(starts).size, 1, 'ratios of a column start at the same place');
});

test('table: a missing figure shows "-" and its ratio "n/a"; one directory has no ratios at all', (t) => {
  const r = report([{ dir: '/a', factor: 1 }, { dir: '/b', factor: 1 }]);
  delete r.dirs[1]!.results['rand-read'];
  const row = formatTable(r).split('\n').find((l) => l.startsWith('fio rand read'));
  t.regex(row!, /\s-\s+\(n\/a\)$/);
  const single = formatTable(report([{ dir: '/only', factor: 1 }]));
  t.false(single.includes('x)'));
  t.false(single.includes('(ratio)'));
});

test('table and JSON leave out a skipped part', (t) => {
  const r = report([{ dir: '/a', factor: 1 }]);
  r.options.skipped = ['fio'];
  r.workloads = workloadSection(workloadsOf(['fio']));
  for (const d of r.dirs) for (const k of ['seq-write', 'seq-read', 'rand-write', 'rand-read'] as const) delete d.results[k];
  const text = formatTable(r);
  t.false(text.includes('fio seq write'));
  t.true(text.includes('small files: create'));
  t.deepEqual(Object.keys(JSON.parse(toJson(r)).workloads), WORKLOAD_KEYS.filter((k) => WORKLOADS[k].part === 'smallfile'));
});

test('JSON: version 1 schema as documented in docs/bench.md', (t) => {
  const doc = JSON.parse(toJson(report([{ dir: '/a', factor: 1 }, { dir: '/b', fstype: 'fuse.brickfs', factor: 3 }]))) as Record<string, unknown>;
  t.deepEqual(Object.keys(doc), ['version', 'started', 'finished', 'host', 'options', 'workloads', 'dirs']);
  t.is(doc.version, 1);
  t.false(Number.isNaN(Date.parse(doc.started as string)));
  t.deepEqual(doc.host, { cpus: 2, kernel: '6.1.0' });
  t.deepEqual(Object.keys(doc.options as object), ['sizeBytes', 'randSizeBytes', 'runtimeSeconds', 'files', 'skipped', 'untarFiles', 'rounds']);
  t.deepEqual((doc.workloads as Record<string, unknown>)['untar'], { label: "untar npm's sources", unit: 's', better: 'lower' });
  const dirs = doc.dirs as Array<{ dir: string; fstype: string; results: Record<string, { value: number; unit: string }> }>;
  t.deepEqual(dirs.map((d) => [d.dir, d.fstype]), [['/a', 'ext4'], ['/b', 'fuse.brickfs']]);
  for (const d of dirs) {
    t.deepEqual(Object.keys(d), ['dir', 'fstype', 'results']);
    t.deepEqual(Object.keys(d.results), WORKLOAD_KEYS);
    for (const [k, m] of Object.entries(d.results)) {
      t.deepEqual(Object.keys(m), ['value', 'unit'], k);
      t.is(typeof m.value, 'number');
      t.is(m.unit, WORKLOADS[k as keyof typeof WORKLOADS].unit);
    }
  }
  t.is(dirs[1]!.results['seq-write']!.value, 3000);
});

/**
 * A strict little XML well-formedness check (no dependency): tags nest and close, attributes
 * are quoted and unique, "<" and "&" appear only as markup or entities, one root element.
 * Returns the element names in document order.
 */
function wellFormed(xml: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  const badAmp = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  const token = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<\/([A-Za-z_][\w.-]*)\s*>|<([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_:][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|[^<]+/y;
  for (let pos = 0; pos < xml.length;) {
    token.lastIndex = pos;
    const m = token.exec(xml);
    if (!m) throw new Error(`not well-formed at offset ${pos}: ${JSON.stringify(xml.slice(pos, pos + 40))}`);
    pos = token.lastIndex;
    const [whole, close, open, attrs, selfClose] = m;
    if (close) {
      if (stack.pop() !== close) throw new Error(`</${close}> closes nothing open`);
    } else if (open) {
      if (stack.length === 0 && ++roots > 1) throw new Error('more than one root element');
      names.push(open);
      const seen = new Set<string>();
      for (const a of (attrs ?? '').matchAll(/([A-Za-z_:][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        if (seen.has(a[1]!)) throw new Error(`duplicate attribute ${a[1]} on <${open}>`);
        seen.add(a[1]!);
        if (badAmp.test(a[2] ?? a[3] ?? '')) throw new Error(`raw & in attribute ${a[1]}`);
      }
      if (!selfClose) stack.push(open);
    } else if (!whole.startsWith('<')) {
      if (stack.length === 0 && whole.trim() !== '') throw new Error('text outside the root element');
      if (badAmp.test(whole)) throw new Error(`raw & in text ${JSON.stringify(whole)}`);
    }
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (roots !== 1) throw new Error('no root element');
  return names;
}

test('the well-formedness check itself refuses broken XML', (t) => {
  t.throws(() => wellFormed('<svg><rect></svg>'));
  t.throws(() => wellFormed('<svg><text>a & b</text></svg>'));
  t.throws(() => wellFormed('<svg x=1></svg>'));
  t.throws(() => wellFormed('<svg/><svg/>'));
  t.deepEqual(wellFormed('<svg a="&amp;"><rect/></svg>\n'), ['svg', 'rect']);
});

test('SVG: well-formed, one rect per (workload, directory), names escaped, first directory at 1.0', (t) => {
  const dirs = [{ dir: '/tmp/a & <b>', factor: 1 }, { dir: "/mnt/it's \"quoted\"", factor: 2 }, { dir: '/c', factor: 0.5 }];
  const svg = toSvg(report(dirs));
  const names = wellFormed(svg);
  t.is(names[0], 'svg');
  t.is(names.filter((n) => n === 'rect').length, WORKLOAD_KEYS.length * dirs.length);
  t.true(svg.includes('/tmp/a &amp; &lt;b&gt;'));
  t.true(svg.includes('/mnt/it&apos;s &quot;quoted&quot;'));
  // Bars of each group come in directory order: first at 1.0; on the log scale twice as fast
  // is as far above it as half as fast is below.
  const heights = [...svg.matchAll(/<rect class="bar"[^>]* height="([\d.]+)"/g)].map((m) => Number(m[1]));
  t.is(heights.length, WORKLOAD_KEYS.length * dirs.length);
  for (let g = 0; g < WORKLOAD_KEYS.length; g++) {
    const [a, b, c] = heights.slice(g * 3, g * 3 + 3) as [number, number, number];
    t.true(b > a && c < a, `group ${g}: ${c} < ${a} < ${b}`);
    t.true(Math.abs((b - a) - (a - c)) < 0.5, `group ${g}: 2x is ${b - a} above 1x, 0.5x ${a - c} below`);
  }
  t.is(heights[0], heights[3], 'the first directory is the same height (1.0) in every group');
  t.regex(svg, /log scale/);
});

test('SVG: a log axis, so 0.1x, 1x and 10x all stay readable', (t) => {
  const svg = toSvg(report([{ dir: '/a', factor: 1 }, { dir: '/b', factor: 10 }, { dir: '/c', factor: 0.1 }]));
  const heights = [...svg.matchAll(/<rect class="bar"[^>]* height="([\d.]+)"/g)].map((m) => Number(m[1]));
  const [one, ten, tenth] = heights.slice(0, 3) as [number, number, number];
  t.true(tenth > 20, `the 0.1x bar is not flat (${tenth})`);
  t.true(Math.abs((ten - one) - (one - tenth)) < 0.5, 'a decade up and a decade down are the same distance');
  t.true(ten - one > 0.25 * ten, 'a decade is a good part of the chart');
  for (const tick of ['0.01', '0.1', '0.5', '1', '2', '10']) t.regex(svg, new RegExp(`>${tick.replace('.', '\\.')}</text>`));
  t.deepEqual(logAxis([1, 2]), { lo: -2, hi: 1 }, 'at least 0.01..10');
  t.deepEqual(logAxis([0.03, 40]), { lo: -3, hi: 2 }, 'a decade under the smallest bar, up to the decade of the largest');
  t.deepEqual(logAxis([0, Infinity, 1]), { lo: -2, hi: 1 }, 'ratios off any log axis do not stretch it');
});

test('SVG: a figure with no ratio still gets its (empty) bar, so the count stays one per pair', (t) => {
  const r = report([{ dir: '/a', factor: 1 }, { dir: '/b', factor: 1 }]);
  r.dirs[1]!.results['untar'] = { value: 0, unit: 's' };
  const svg = toSvg(r);
  t.is(wellFormed(svg).filter((n) => n === 'rect').length, WORKLOAD_KEYS.length * 2);
  t.regex(svg, /height="0"/);
});

test('table: a run that kept the page cache says so under the table', (t) => {
  const r = report([{ dir: '/a', factor: 1 }]);
  t.notRegex(formatTable(r), /page cache/, 'nothing said when it was dropped (or for reports from before the option)');
  r.options.dropCaches = false;
  t.regex(formatTable(r), /^page cache not dropped \(--no-drop-caches\): read figures may have come from memory\.$/m);
});
