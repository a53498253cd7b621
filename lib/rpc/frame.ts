import { Packr } from 'msgpackr';
import { bulkPool } from '../buffer-pool.js';
import { FsError, type WireError } from '../errors.js';
import { TRACE_WIRE_BYTES } from '../trace.js';

/**
 * The wire envelope, msgpack-encoded, one per WebSocket binary message. A connection opens
 * with the hello, each way (GlusterFS's SETVOLUME handshake), the one exchange every
 * version reads whatever its own (so neither side needs per-fop compatibility shims):
 *   hello    {v, hello: {version, name,         client → brick, the first message; name is
 *             username?, password?, volumeId?,  for the brick's logs and statedump; the
 *             pushes?}}                         credentials and the volume id the volfile
 *                                               gave the client (a brick with credentials in
 *                                               its volfile refuses a hello without them);
 *                                               pushes: false, no invalidation pushes
 *            {v, hello: {version, clientId}}    brick → client; clientId: the brick's name
 *                                               for this connection (its locks' owner prefix)
 *            {v, hello: {version}, err}         the brick speaks another version: it closes
 * The client uses the brick only if both versions are WIRE_VERSION; the brick answers any
 * request before the hello with EPROTO. Then:
 *   request  {v, id, fop, cred, args}    cred: the caller's {uid, gid, groups, pid} (lib/frame.ts);
 *                                        args last, where a bulk payload goes last (encodeFramePooled);
 *                                        args as the fop table's `args` spec says, nothing else
 *            {v, id, fop, cred, trace, args}  trace, only while diagnostics.trace is on: the
 *                                        caller's span, 25 bytes bin (trace id, span id, flags:
 *                                        lib/trace.ts traceToWire); a brick that does not trace
 *                                        ignores it, as every brick ignores envelope keys it does
 *                                        not read, so it needs no new wire version
 *   reply    {v, id, ok}  or  {v, id, err: {errno, code, message}}
 *   push     {v, push: KIND, ...}   brick → client, unasked ('invalidate': {paths};
 *                                   'contended': {path, name, owner}); no id: a client reads
 *                                   a kind it does not know as nothing
 * Binary data (read/write payloads, xattr values) travels as msgpack bin, never base64.
 * id 0 is reserved for replies to frames whose id could not be read.
 */
export const WIRE_VERSION = 3;

/** Largest frame a brick accepts; bigger ones get an EMSGSIZE reply. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** ws closes the connection above this size without reading it all (a hard guard). */
export const HARD_MAX_FRAME_BYTES = 64 * 1024 * 1024;

export interface RequestFrame {
  v: number;
  id: number;
  fop: string;
  args: Record<string, unknown>;
  /** The caller's credentials as sent; the brick checks them (frameFromWire) before any fop. */
  cred?: unknown;
  /** The caller's span (lib/trace.ts traceToWire), when tracing; never in args, which the brick checks field by field. */
  trace?: Uint8Array;
}

export interface ReplyFrame {
  v: number;
  id: number;
  ok?: unknown;
  err?: WireError;
}

/**
 * Another client changed these volume paths (features.cache-invalidation, GlusterFS's
 * upcall): what the brick sends to every other connection, coalesced per event-loop turn.
 */
export interface InvalidatePush {
  v: number;
  push: 'invalidate';
  paths: string[];
}

/**
 * A lock this client holds (owner as the client named it) is wanted by another request:
 * a client holding it for a burst lets it go now.
 */
export interface ContendedPush {
  v: number;
  push: 'contended';
  path: string;
  name: string;
  owner: string;
}

/** Every message a brick sends on its own; `push` names the kind. */
export type PushFrame = InvalidatePush | ContendedPush;

/** Longest name a client gives itself in its hello. */
export const MAX_HELLO_NAME_BYTES = 256;

/** Longest username, password or volume id a hello carries. */
export const MAX_HELLO_FIELD_BYTES = 256;

/** What a client says of itself in its hello (lib/rpc/frame.ts, the envelope above). */
export interface Hello {
  version: number;
  name: string;
  /** The credential the volfile gave this client (protocol/client username/password). */
  username?: string;
  password?: string;
  /** The id of the volume the client means to reach (a brick of another volume refuses it). */
  volumeId?: string;
  /**
   * false: the client keeps no cache (self-heal, rebalance), so the brick sends it no
   * invalidation pushes; absent or true: it gets them while features.cache-invalidation is on.
   */
  pushes?: boolean;
}

/** The client's first message. */
export interface HelloFrame {
  v: number;
  hello: Hello;
}

/** The brick's answer to the hello: its version, and the id it gave the connection (none when refused). */
export interface HelloReplyFrame {
  v: number;
  hello: { version: number; clientId?: string };
  err?: WireError;
}

// Plain maps (no records) so the format is msgpack any peer can read, and frozen
// samples in test/fixtures stay meaningful.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export function encodeFrame(frame: RequestFrame | ReplyFrame | PushFrame | HelloFrame | HelloReplyFrame): Buffer {
  return packr.pack(frame);
}

/** Payloads from this size travel in pooled frames (a msgpack bin32, as msgpackr writes them too). */
export const BULK_PAYLOAD_BYTES = 65536;

export interface EncodedFrame {
  bytes: Buffer;
  /** Call once the bytes are written out (ws send callback): the slab is reused. */
  release(): void;
}

const EMPTY = Buffer.alloc(0);
const noRelease = (): void => {};

/** The request's args or the reply's ok map when it carries a bulk `data` payload. */
function bulkOf(frame: RequestFrame | ReplyFrame): { map: Record<string, unknown>; data: Uint8Array } | undefined {
  const map = ('args' in frame ? frame.args : (frame as ReplyFrame).ok) as Record<string, unknown> | undefined;
  const data = map?.data;
  if (data instanceof Uint8Array && data.length >= BULK_PAYLOAD_BYTES) return { map: map!, data };
  return undefined;
}

/**
 * encodeFrame for the hot path: a frame carrying a bulk payload (write args, read reply) is
 * built in a pooled slab. The envelope is packed with an empty `data` placed last, whose
 * bin8 header (c4 00) is then replaced by a bin32 header and the payload: the same msgpack
 * the decoder reads for any frame, one copy of the payload, no fresh allocation.
 */
export function encodeFramePooled(frame: RequestFrame | ReplyFrame): EncodedFrame {
  const bulk = bulkOf(frame);
  if (!bulk) return { bytes: packr.pack(frame), release: noRelease };
  const { data: _data, ...rest } = bulk.map;
  const map = { ...rest, data: EMPTY };
  const head: Buffer = packr.pack('args' in frame
    ? (frame.cred === undefined ? { v: frame.v, id: frame.id, fop: frame.fop, args: map }
      : frame.trace === undefined ? { v: frame.v, id: frame.id, fop: frame.fop, cred: frame.cred, args: map }
        : { v: frame.v, id: frame.id, fop: frame.fop, cred: frame.cred, trace: frame.trace, args: map })
    : { v: frame.v, id: frame.id, ok: map });
  const h = head.length - 2;
  const total = h + 5 + bulk.data.length;
  const slab = bulkPool.take(total);
  head.copy(slab, 0, 0, h);
  slab[h] = 0xc6;
  slab.writeUInt32BE(bulk.data.length, h + 1);
  slab.set(bulk.data, h + 5);
  return { bytes: slab.subarray(0, total), release: () => bulkPool.give(slab) };
}

/** A frame that is not a valid envelope: the peer gets EPROTO and the connection lives on. */
export class MalformedFrameError extends Error {
  constructor(message: string, readonly id = 0) {
    super(message);
    this.name = 'MalformedFrameError';
  }
}

function decodeObject(buf: Uint8Array): Record<string, unknown> {
  let v: unknown;
  try {
    v = packr.unpack(buf);
  } catch (e) {
    throw new MalformedFrameError(`undecodable frame: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MalformedFrameError('frame is not a map');
  return v as Record<string, unknown>;
}

function checkEnvelope(o: Record<string, unknown>): number {
  const id = typeof o.id === 'number' && Number.isSafeInteger(o.id) && o.id > 0 ? o.id : 0;
  if (o.v !== WIRE_VERSION) throw new MalformedFrameError(`unsupported wire version ${String(o.v)}`, id);
  if (id === 0) throw new MalformedFrameError('frame has no valid id');
  return id;
}

export function decodeRequest(buf: Uint8Array): RequestFrame {
  return requestOf(decodeObject(buf));
}

function requestOf(o: Record<string, unknown>): RequestFrame {
  const id = checkEnvelope(o);
  if (typeof o.fop !== 'string') throw new MalformedFrameError('request has no fop', id);
  const args = o.args ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new MalformedFrameError('request args is not a map', id);
  const req: RequestFrame = { v: WIRE_VERSION, id, fop: o.fop, args: args as Record<string, unknown>, ...(o.cred === undefined ? {} : { cred: o.cred }) };
  if (o.trace !== undefined) {
    if (!(o.trace instanceof Uint8Array) || o.trace.length !== TRACE_WIRE_BYTES) throw new MalformedFrameError(`request trace is not ${TRACE_WIRE_BYTES} bytes`, id);
    req.trace = o.trace;
  }
  return req;
}

/** The version a hello names: read whatever the envelope's `v` (that is the hello's point). */
function helloVersion(hello: unknown): number {
  const version = (hello as { version?: unknown } | null)?.version;
  if (typeof hello !== 'object' || hello === null || !Number.isSafeInteger(version) || (version as number) < 1) {
    throw new MalformedFrameError('hello without a version');
  }
  return version as number;
}

/** What a brick reads from a client: the hello, or a request. */
export function decodeClientFrame(buf: Uint8Array): HelloFrame | RequestFrame {
  const o = decodeObject(buf);
  if (o.hello === undefined) return requestOf(o);
  const version = helloVersion(o.hello);
  const h = o.hello as Record<string, unknown>;
  const name = h.name ?? '';
  if (typeof name !== 'string' || Buffer.byteLength(name) > MAX_HELLO_NAME_BYTES) throw new MalformedFrameError(`hello name is not a string of at most ${MAX_HELLO_NAME_BYTES} bytes`);
  const hello: Hello = { version, name };
  for (const key of ['username', 'password', 'volumeId'] as const) {
    const v = h[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || Buffer.byteLength(v) > MAX_HELLO_FIELD_BYTES) throw new MalformedFrameError(`hello ${key} is not a string of at most ${MAX_HELLO_FIELD_BYTES} bytes`);
    hello[key] = v;
  }
  if (h.pushes !== undefined) {
    if (typeof h.pushes !== 'boolean') throw new MalformedFrameError('hello pushes is not a boolean');
    hello.pushes = h.pushes;
  }
  return { v: typeof o.v === 'number' ? o.v : 0, hello };
}

/**
 * What a client reads first: the brick's hello reply. A brick from before the hello answers
 * it with an error reply in its own envelope: that envelope's version is the brick's.
 */
export function decodeHelloReply(buf: Uint8Array): HelloReplyFrame {
  const o = decodeObject(buf);
  const err = o.err as WireError | undefined;
  if (o.hello === undefined) {
    if (typeof o.v !== 'number') throw new MalformedFrameError('neither a hello reply nor a versioned frame');
    return { v: o.v, hello: { version: o.v }, err: err ?? FsError.of('EPROTO', 'answered the hello with something else').toWire() };
  }
  const version = helloVersion(o.hello);
  const clientId = (o.hello as { clientId?: unknown }).clientId;
  if (clientId !== undefined && (typeof clientId !== 'string' || clientId.length === 0)) throw new MalformedFrameError('hello reply with a bad clientId');
  return { v: typeof o.v === 'number' ? o.v : 0, hello: clientId === undefined ? { version } : { version, clientId }, ...(err ? { err } : {}) };
}

export function decodeReply(buf: Uint8Array): ReplyFrame {
  return replyOf(decodeObject(buf));
}

function replyOf(o: Record<string, unknown>): ReplyFrame {
  const id = typeof o.id === 'number' ? o.id : 0;
  if (o.v !== WIRE_VERSION) throw new MalformedFrameError(`unsupported wire version ${String(o.v)}`, id);
  return { v: WIRE_VERSION, id, ok: o.ok, err: o.err as WireError | undefined };
}

/**
 * What a client reads from a brick: a reply, or a push it understands. A push of a kind
 * this client does not know is undefined (ignored, as an older client ignores every push).
 */
export function decodeServerFrame(buf: Uint8Array): ReplyFrame | PushFrame | undefined {
  const o = decodeObject(buf);
  if (o.push === undefined) return replyOf(o);
  if (o.v !== WIRE_VERSION) throw new MalformedFrameError(`unsupported wire version ${String(o.v)}`);
  if (o.push === 'contended') {
    if (typeof o.path !== 'string' || typeof o.name !== 'string' || typeof o.owner !== 'string') throw new MalformedFrameError('contended push without path, name and owner');
    return { v: WIRE_VERSION, push: 'contended', path: o.path, name: o.name, owner: o.owner };
  }
  if (o.push !== 'invalidate') return undefined;
  if (!Array.isArray(o.paths) || !o.paths.every((p) => typeof p === 'string')) throw new MalformedFrameError('invalidate push without a list of paths');
  return { v: WIRE_VERSION, push: 'invalidate', paths: o.paths as string[] };
}
