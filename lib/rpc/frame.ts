import { Packr } from 'msgpackr';
import { bulkPool } from '../buffer-pool.js';
import type { WireError } from '../errors.js';

/**
 * The wire envelope, msgpack-encoded, one per WebSocket binary message:
 *   request  {v, id, fop, args, cred}    cred: the caller's {uid, gid, groups, pid} (lib/frame.ts)
 *   reply    {v, id, ok}  or  {v, id, err: {errno, code, message}}
 *   push     {v, push: KIND, ...}   brick → client, unasked ('invalidate': {paths};
 *                                   'contended': {path, name, owner})
 * A push has no id: a client that does not know pushes reads its id as 0, finds no request
 * waiting for it and drops it (protocol/client before pushes existed did exactly that,
 * silently, and kept the connection). Binary data (read/write payloads, xattr values) travels as msgpack bin, never base64.
 * id 0 is reserved for replies to frames whose id could not be read.
 */
export const WIRE_VERSION = 2;

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

// Plain maps (no records) so the format is msgpack any peer can read, and frozen
// samples in test/fixtures stay meaningful.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export function encodeFrame(frame: RequestFrame | ReplyFrame | PushFrame): Buffer {
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
    ? { v: frame.v, id: frame.id, fop: frame.fop, args: map, cred: frame.cred }
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
  const o = decodeObject(buf);
  const id = checkEnvelope(o);
  if (typeof o.fop !== 'string') throw new MalformedFrameError('request has no fop', id);
  const args = o.args ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new MalformedFrameError('request args is not a map', id);
  return { v: WIRE_VERSION, id, fop: o.fop, args: args as Record<string, unknown>, cred: o.cred };
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
