import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Span, SpanKind as OtelSpanKind, Tracer } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { errnoCodeOf, FsError } from './errors.js';
import type { Frame } from './frame.js';
import { Logger } from './log.js';

/**
 * Tracing (diagnostics.trace, docs/operations.md "Tracing"): each FUSE request is a trace,
 * with a span per fop per translator that handles it, carried over the wire to the brick.
 * The process-wide tracer lives here; a frame carries the span a fop runs under
 * (Frame.trace), so a frame without one costs nothing: no span, no context, no closure.
 * OpenTelemetry is loaded only when tracing is first switched on.
 */

/** The span a fop runs under (W3C trace context's ids, lower-case hex; flags bit 0: sampled). */
export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
}

/** Where a process's spans go. */
export interface TraceConfig {
  /** The name spans carry as their service (Zipkin's localEndpoint.serviceName). */
  service: string;
  /** A Zipkin v2 URL (http://HOST:9411/api/v2/spans); empty: a JSON-lines file (traceFile()). */
  endpoint: string;
}

/** The wire form of a TraceContext: trace id (16 bytes), span id (8), flags (1), as a traceparent. */
export const TRACE_WIRE_BYTES = 25;

type Api = typeof import('@opentelemetry/api');
type Provider = { forceFlush(): Promise<void>; shutdown(): Promise<void> };

const log = new Logger('trace');

let tracer: Tracer | undefined;
let api: Api | undefined;
let provider: Provider | undefined;
/** Who wants tracing on, with what: the last one set wins (a mount's new graph over its old one). */
const owners = new Map<object, TraceConfig>();
let applied = '';
let switching: Promise<void> = Promise.resolve();

/** Whether this process records spans now. */
export function tracing(): boolean {
  return tracer !== undefined;
}

/**
 * Switches this process's tracing on (cfg) or off (undefined) for owner (a translator):
 * on while any owner wants it. Resolves once the change is in effect; switching off
 * flushes the spans still buffered.
 */
export function setTracing(owner: object, cfg: TraceConfig | undefined): Promise<void> {
  if (cfg) {
    owners.delete(owner);
    owners.set(owner, cfg);
  } else owners.delete(owner);
  const want = [...owners.values()].at(-1);
  const key = want ? JSON.stringify(want) : '';
  if (key === applied) return switching;
  applied = key;
  switching = switching.then(async () => {
    const old = provider;
    tracer = undefined;
    provider = undefined;
    if (old) await old.shutdown().catch((e: Error) => log.warn(`spans not all exported: ${e.message}`));
    if (want && applied === key) await start(want);
  }).catch((e: Error) => log.error(`tracing not started: ${e.message}`));
  return switching;
}

/** Exports what is buffered (a test reading the span file, a process about to exit). */
export async function flushTracing(): Promise<void> {
  await switching;
  await provider?.forceFlush();
}

async function start(cfg: TraceConfig): Promise<void> {
  const [otel, sdk, resources, semconv] = await Promise.all([
    import('@opentelemetry/api'), import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'), import('@opentelemetry/semantic-conventions'),
  ]);
  let exporter: SpanExporter;
  // The option is a free string (volume set cannot check a URL): a value that is not one
  // must not cost the spans, which go to the file instead.
  const url = /^https?:\/\/[^/\s]+/.test(cfg.endpoint);
  if (cfg.endpoint && !url) log.error(`diagnostics.trace-endpoint ${JSON.stringify(cfg.endpoint)} is not an http(s) URL (http://HOST:9411/api/v2/spans): spans go to ${traceFile()}`);
  if (url) {
    const { ZipkinExporter } = await import('@opentelemetry/exporter-zipkin');
    exporter = new ZipkinExporter({ url: cfg.endpoint, serviceName: cfg.service });
    log.info(`spans of ${cfg.service} to ${cfg.endpoint}`);
  } else {
    const file = traceFile();
    exporter = new JsonLinesExporter(file, cfg.service);
    log.info(`spans of ${cfg.service} to ${file}`);
  }
  const p = new sdk.BasicTracerProvider({
    resource: resources.resourceFromAttributes({ [semconv.ATTR_SERVICE_NAME]: cfg.service }),
    // Short batches: a trace is read a moment after the operation, not minutes later.
    spanProcessors: [new sdk.BatchSpanProcessor(exporter, { scheduledDelayMillis: 500, maxQueueSize: 8192, maxExportBatchSize: 1024 })],
  });
  api = otel;
  provider = p;
  tracer = p.getTracer('brickfs');
}

/**
 * This process's span file: beside its log (the file its stderr goes to, as the daemon and
 * `brickfs mount` start bricks and mounts), `NAME.spans.jsonl` for `NAME.log`; in the temp
 * directory when stderr is not a file (a process run by hand in the foreground).
 */
export function traceFile(): string {
  try {
    const err = fs.readlinkSync('/proc/self/fd/2');
    if (path.isAbsolute(err) && fs.statSync(err).isFile()) return err.replace(/(\.log)?$/, '.spans.jsonl');
  } catch {
    // stderr is a terminal, a pipe, or closed.
  }
  return path.join(os.tmpdir(), `brickfs-${process.pid}.spans.jsonl`);
}

/** What a span records of an error: errno name and message. */
function failed(span: Span, e: unknown): void {
  const err = FsError.from(e);
  span.setAttribute('error', err.code);
  span.setStatus({ code: 2, message: err.message });
}

const CLIENT = 2 as OtelSpanKind;
const SERVER = 1 as OtelSpanKind;

/** The span kinds brickfs makes: a translator's (internal), the wire's two ends, the FUSE request. */
export type BrickfsSpanKind = 'internal' | 'client' | 'server';

function kindOf(k: BrickfsSpanKind): OtelSpanKind {
  return k === 'client' ? CLIENT : k === 'server' ? SERVER : (0 as OtelSpanKind);
}

function startSpan(name: string, parent: TraceContext | undefined, kind: BrickfsSpanKind): Span | undefined {
  const t = tracer;
  if (!t || !api) return undefined;
  const ctx = parent ? api.trace.setSpanContext(api.ROOT_CONTEXT, { ...parent, isRemote: false }) : api.ROOT_CONTEXT;
  return t.startSpan(name, { kind: kindOf(kind), root: parent === undefined }, ctx);
}

/**
 * Runs a fop of a traced frame as a span `name` under the frame's, the fop seeing the new
 * span in its frame. Only for frames with a trace (callers check, so that an untraced fop
 * allocates nothing): a process not tracing runs it as it is.
 */
export function traceFop<T>(name: string, frame: Frame, run: (f: Frame) => Promise<T>, kind: BrickfsSpanKind = 'internal'): Promise<T> {
  const span = startSpan(name, frame.trace, kind);
  if (!span) return run(frame);
  let p: Promise<T>;
  try {
    p = run({ ...frame, trace: span.spanContext() });
  } catch (e) {
    failed(span, e);
    span.end();
    throw e;
  }
  return p.then((r) => {
    span.end();
    return r;
  }, (e: unknown) => {
    failed(span, e);
    span.end();
    throw e;
  });
}

/** A root span (a FUSE request), ended by whoever answers the request. */
export interface RootSpan {
  readonly context: TraceContext;
  /** errno: the answer's (0 for success). */
  end(errno?: number): void;
}

/** A new trace, or undefined when this process is not tracing. */
export function startRoot(name: string): RootSpan | undefined {
  const span = startSpan(name, undefined, 'server');
  if (!span) return undefined;
  return {
    context: span.spanContext(),
    end(errno = 0) {
      if (errno !== 0) {
        const code = errnoCodeOf(errno) ?? String(errno);
        span.setAttribute('error', code);
        span.setStatus({ code: 2, message: code });
      }
      span.end();
    },
  };
}

/** The frame's credentials alone: what goes in a request's `cred` (the trace travels beside it). */
export function untraced(f: Frame): Frame {
  return { uid: f.uid, gid: f.gid, groups: f.groups, pid: f.pid };
}

/** A request's frame with the caller's span from the wire (traceToWire), when this process traces. */
export function withTrace(frame: Frame, wire: Uint8Array): Frame {
  const trace = tracer === undefined ? undefined : traceFromWire(wire);
  return trace === undefined ? frame : { ...frame, trace };
}

/** A TraceContext as the wire carries it (TRACE_WIRE_BYTES). */
export function traceToWire(t: TraceContext): Uint8Array {
  const b = Buffer.allocUnsafe(TRACE_WIRE_BYTES);
  b.write(t.traceId, 0, 16, 'hex');
  b.write(t.spanId, 16, 8, 'hex');
  b[24] = t.traceFlags & 0xff;
  return b;
}

/** A TraceContext from the wire, or undefined when v is not one (wrong size, all-zero ids). */
export function traceFromWire(v: unknown): TraceContext | undefined {
  if (!(v instanceof Uint8Array) || v.length !== TRACE_WIRE_BYTES) return undefined;
  const b = Buffer.from(v.buffer, v.byteOffset, v.length);
  const traceId = b.toString('hex', 0, 16);
  const spanId = b.toString('hex', 16, 24);
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, traceFlags: b[24]! };
}

/** Zipkin v2's JSON for a span: what its /api/v2/spans takes, one object per line here. */
export interface ZipkinSpan {
  traceId: string;
  id: string;
  parentId?: string;
  name: string;
  kind?: 'CLIENT' | 'SERVER';
  /** Microseconds since the epoch. */
  timestamp: number;
  duration: number;
  localEndpoint: { serviceName: string };
  tags?: Record<string, string>;
}

function micros(t: [number, number]): number {
  return Math.round(t[0] * 1e6 + t[1] / 1e3);
}

/** Spans as JSON lines in Zipkin v2's shape, appended to one file per process. */
class JsonLinesExporter implements SpanExporter {
  private fd?: number;

  constructor(private readonly file: string, private readonly service: string) {}

  export(spans: ReadableSpan[], done: Parameters<SpanExporter['export']>[1]): void {
    const lines = spans.map((s) => JSON.stringify(zipkinOf(s, this.service))).join('\n') + '\n';
    try {
      this.fd ??= fs.openSync(this.file, 'a', 0o640);
      fs.writeSync(this.fd, lines);
      done({ code: 0 });
    } catch (e) {
      done({ code: 1, error: e as Error });
    }
  }

  async shutdown(): Promise<void> {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  async forceFlush(): Promise<void> {}
}

function zipkinOf(s: ReadableSpan, service: string): ZipkinSpan {
  const c = s.spanContext();
  const out: ZipkinSpan = {
    traceId: c.traceId, id: c.spanId, name: s.name,
    timestamp: micros(s.startTime), duration: Math.max(1, micros(s.duration)), localEndpoint: { serviceName: service },
  };
  const parent = s.parentSpanContext?.spanId;
  if (parent) out.parentId = parent;
  if (s.kind === CLIENT) out.kind = 'CLIENT';
  else if (s.kind === SERVER) out.kind = 'SERVER';
  const tags = Object.entries(s.attributes);
  if (tags.length > 0) out.tags = Object.fromEntries(tags.map(([k, v]) => [k, String(v)]));
  return out;
}
