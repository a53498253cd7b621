import fs from 'node:fs';
import type { ZipkinSpan } from './trace.js';

/**
 * Reading the span files tracing writes (lib/trace.ts, one Zipkin v2 span per line): the
 * spans of several processes put together, and a trace as an indented tree. For tests and
 * scripts/span-tree.mjs; the data path never reads spans.
 */

/** Every span of these JSON-lines files (missing files have none; a torn last line is skipped). */
export function readSpans(files: Iterable<string>): ZipkinSpan[] {
  const out: ZipkinSpan[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as ZipkinSpan);
      } catch {
        // A line being written while we read.
      }
    }
  }
  return out;
}

/** Spans by trace id. */
export function byTrace(spans: readonly ZipkinSpan[]): Map<string, ZipkinSpan[]> {
  const out = new Map<string, ZipkinSpan[]>();
  for (const s of spans) {
    const l = out.get(s.traceId);
    if (l) l.push(s);
    else out.set(s.traceId, [s]);
  }
  return out;
}

/**
 * One trace as text: a line per span, under its parent, children in start order, with its
 * start relative to the trace's first span, its duration and its process. A span whose parent
 * is not among them (still buffered in another process) is shown as a root.
 */
export function formatTrace(spans: readonly ZipkinSpan[]): string {
  const ids = new Set(spans.map((s) => s.id));
  const kids = new Map<string | undefined, ZipkinSpan[]>();
  for (const s of spans) {
    const p = s.parentId !== undefined && ids.has(s.parentId) ? s.parentId : undefined;
    const l = kids.get(p);
    if (l) l.push(s);
    else kids.set(p, [s]);
  }
  for (const l of kids.values()) l.sort((a, b) => a.timestamp - b.timestamp);
  const t0 = Math.min(...spans.map((s) => s.timestamp));
  const ms = (us: number): string => (us / 1000).toFixed(2);
  const lines: string[] = [];
  const walk = (s: ZipkinSpan, prefix: string, last: boolean, top: boolean): void => {
    const head = top ? '' : `${prefix}${last ? '└─ ' : '├─ '}`;
    const err = s.tags?.error ? ` ${s.tags.error}` : '';
    // Start times are whole milliseconds (OpenTelemetry's JS SDK stamps them from Date.now()); durations are finer.
    lines.push(`${head}${s.name}${err}  +${Math.round((s.timestamp - t0) / 1000)} ms, ${ms(s.duration)} ms  [${s.localEndpoint.serviceName}]`);
    const next = top ? '' : `${prefix}${last ? '   ' : '│  '}`;
    const l = kids.get(s.id) ?? [];
    l.forEach((k, i) => walk(k, next, i === l.length - 1, false));
  };
  for (const r of kids.get(undefined) ?? []) walk(r, '', true, true);
  return lines.join('\n');
}
