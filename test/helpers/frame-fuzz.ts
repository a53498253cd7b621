// A seeded generator of hostile frames for a brick (test/security/frame-fuzz.test.ts): from
// garbage bytes up to well-formed requests of every fop in the fop table with one field or
// several made wrong, and well-formed requests on paths of a small pool, so that creates,
// opens, writes, renames and unlinks meet each other's results.
import fs from 'node:fs';
import { Packr } from 'msgpackr';
import { BRICK_PRIVATE_DIR, ENTRYLK_WHOLE_DIR, FOP_NAMES, FOPS, XATTR_GFID, XATTR_LAYOUT, XATTR_LINKTO, type FopName } from '../../lib/fops.js';
import { mulberry32 } from '../../lib/prng.js';
import { MAX_FRAME_BYTES, WIRE_VERSION, type ReplyFrame } from '../../lib/rpc/frame.js';
import type { ArgSpec, FieldsSpec } from '../../lib/rpc/args.js';

/** One frame to send, and what the brick may do with it. */
export interface FuzzFrame {
  /** What it is, for the failure message. */
  what: string;
  data: Buffer | string;
  /** A binary or text WebSocket message, or bytes written on the socket beneath the WebSocket framing. */
  how: 'binary' | 'text' | 'socket';
  /** The id of a request the brick can read (its reply tells the fuzzer what it opened). */
  id?: number;
  fop?: string;
  /** A blocking entry lock: its reply may wait for another owner's unlock. */
  mayBlock?: boolean;
  /** The brick is expected to close the connection (broken WebSocket framing, a text message that is not UTF-8). */
  closes?: boolean;
}

/** The names the fuzzer makes, and the way out of the brick it tries. */
export interface FuzzTargets {
  /** In every name the fuzzer makes: a name outside the brick with it is an escape. */
  marker: string;
  /** The canary directory's name, a sibling of the brick directory. */
  canary: string;
  /** A file in the canary directory. */
  canaryFile: string;
  /** The base name of the directory holding brick and canary. */
  rootBase: string;
}

const S_IFMT = 0o170000;
const { S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK, S_IFREG, S_IFDIR, S_IFLNK } = fs.constants;

/**
 * Device numbers a device node made by the fuzzer may carry. Only ones that are harmless
 * should the brick ever open the node: no device (major 4095 is beyond every assigned major),
 * null, zero, and numbers whose low 32 bits are 0 (however a layer truncates them). The fuzz
 * runs on a machine others share; a random number could name its disk.
 */
const SAFE_RDEVS = [0, 0x103, 0x105, 0xfffff, 2 ** 32, 2 ** 40, 2 ** 52];

/** Numbers at the edges: what a field of numbers gets when it is made wrong. */
const EDGE_NUMBERS: readonly unknown[] = [
  -1, -0, 0.5, -(2 ** 31), 2 ** 31, 2 ** 31 - 1, 2 ** 32, 2 ** 32 - 1, 2 ** 53 - 1, 2 ** 53, 2 ** 63, 2 ** 64, 1e308, -1e308,
  Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MIN_VALUE, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n,
];

/** Values of every other kind. */
const ODD_VALUES: readonly unknown[] = [
  null, true, false, '', 'x', '/', [], [1, 2], {}, { a: 1 }, Buffer.alloc(0), Buffer.from([0, 1, 2]), new Date(0), 0, -1, 1.5,
  'A'.repeat(70_000), Array.from({ length: 5000 }, () => 0),
];

/** Flags a real client may send, and every other bit. */
const OPEN_FLAGS = [
  0, fs.constants.O_WRONLY, fs.constants.O_RDWR, fs.constants.O_RDWR | fs.constants.O_TRUNC, fs.constants.O_WRONLY | fs.constants.O_APPEND,
  fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_RDWR, fs.constants.O_DIRECTORY, fs.constants.O_NOFOLLOW, 0o10000000 /* O_PATH */,
  fs.constants.O_DIRECT | fs.constants.O_RDWR, fs.constants.O_NONBLOCK, 0o20000000 /* O_TMPFILE's bit */, 0x20 /* FMODE_EXEC */, 3, 0xffffffff,
];

const MODE_TYPES = [S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK, 0, S_IFMT];

// What the brick reads: plain maps, as lib/rpc/frame.ts packs them.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });
/** Packs anything, undefined fields as they are (msgpack nil). */
const pack = (v: unknown): Buffer => packr.pack(v);

export class FrameFuzzer {
  private readonly rnd: () => number;
  private nextId = 1;
  /** fds the brick gave this session (from open and create replies) and not released. */
  private readonly fds = new Set<number>();
  /** The requests sent and not answered, by id: their fop (an open's reply carries an fd). */
  private readonly pending = new Map<number, string>();
  /** Paths the well-formed requests use, so they meet each other's files. */
  private readonly pool: string[];
  /** Names a path is made of: plain ones, escapes, the private directory, odd bytes. */
  private readonly parts: string[];
  /** Making a well-formed request: its paths come from the pool mostly. */
  private wellFormedNow = false;
  /** A frame bigger than the brick accepts, made once. */
  private oversized?: Buffer;

  constructor(readonly seed: number, private readonly targets: FuzzTargets) {
    this.rnd = mulberry32(seed);
    const m = targets.marker;
    this.pool = [
      `/${m}`, `/${m}/a`, `/${m}/b`, `/${m}/d`, `/${m}/d/e`, `/${m}/d/f`, `/${m}-f`, `/${m}-g`, `/${m}-d`, `/${m}-d/x`,
      `/${m}-d/y`, `/${m}-d/z/w`, `/${m}-l`, `/${m}-p`, `/${m}-s`, '/',
    ];
    this.parts = [
      m, `${m}-a`, `${m}-d`, `${m}-f`, `${m}-${'n'.repeat(240)}`, `${m}-${'n'.repeat(260)}`, '..', '.', '', targets.canary,
      targets.canaryFile, BRICK_PRIVATE_DIR, 'index', 'migrate', targets.rootBase, 'tmp', 'etc', 'proc', 'self', 'root',
      `${m}\0nul`, `${m}-日本語`, `${m} sp`, `${m}\n`, '%2e%2e', `${m}-\u00ff\ud800`,
    ];
  }

  private int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  private chance(p: number): boolean {
    return this.rnd() < p;
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  private bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** A volume path: from the pool, made of the names above, escaping, too long, or no path at all. */
  path(): string {
    const { marker: m, canary, canaryFile, rootBase } = this.targets;
    switch (this.int(12)) {
      case 0: case 1: case 2: case 3: case 4: return this.pick(this.pool);
      case 5: case 6: {
        const n = 1 + this.int(4);
        return '/' + Array.from({ length: n }, () => this.pick(this.parts)).join('/');
      }
      case 7: return this.pick([
        `/../${canary}/${canaryFile}`, `/../${canary}/${m}`, `/../${canary}`, `/../../${rootBase}/${canary}/${canaryFile}`,
        `/../../../../../../tmp/${m}`, `/../../../../../../etc/${m}`, `/../../../../../../${m}`, `/${m}/../../${canary}/${m}`,
        `/${BRICK_PRIVATE_DIR}/index`, `/${BRICK_PRIVATE_DIR}/index/${m}`, `/${BRICK_PRIVATE_DIR}/migrate/${m}`,
        `/${BRICK_PRIVATE_DIR}/migrate/../../../${canary}/${m}`, `/${BRICK_PRIVATE_DIR}/${m}`, `/${BRICK_PRIVATE_DIR}`,
        `/${m}/./a`, `//${m}`, `/${m}//a`, `/${m}/`, `/${m}/a/`,
      ]);
      case 8: return this.pick([
        // Host paths, meant as paths of the volume (inside the brick).
        '/etc/passwd', '/proc/self/mem', '/dev/sda', `/tmp/${m}`, '/root/.ssh/authorized_keys',
        // Not volume paths at all.
        `${m}`, `../${canary}`, '', '.', '..', `\0/${m}`, `/${m}\0/../../${canary}`,
      ]);
      case 9: return '/' + `${m}/`.repeat(1 + this.int(400)).slice(0, -1);
      case 10: return `/${m}-` + 'L'.repeat(this.pick([200, 255, 256, 4090, 4097, 70_000]));
      default: return '/' + this.bytes(1 + this.int(30)).toString('latin1');
    }
  }

  /** A string argument (names, owners, symlink targets). */
  private string(): string {
    const { marker: m, canary, canaryFile } = this.targets;
    switch (this.int(6)) {
      case 0: return this.path();
      case 1: return this.pick([`../${canary}/${canaryFile}`, `/etc/passwd`, `../../../${m}`, '', ENTRYLK_WHOLE_DIR, `${m}`, 'x'.repeat(4097)]);
      case 2: return this.pick(['user.k', `user.${m}`, 'trusted.x', XATTR_GFID, XATTR_LAYOUT, XATTR_LINKTO, 'security.capability', 'system.posix_acl_access', 'user.' + 'k'.repeat(300), 'bogus']);
      case 3: return this.bytes(this.int(40)).toString('latin1');
      default: return `${m}-${this.int(8)}`;
    }
  }

  private mode(): number {
    if (this.chance(0.3)) return this.pick([0o644, 0o755, 0o600, 0o777, 0o4755, 0o6777, 0o1777, 0]);
    return this.pick(MODE_TYPES) | this.int(0o10000);
  }

  private fd(): number {
    if (this.fds.size > 0 && this.chance(0.7)) return this.pick([...this.fds]);
    return this.pick([0, 1, 2, 3, 1000, 2 ** 31, 2 ** 53 - 1, this.int(200)]);
  }

  private xattrs(): Record<string, Buffer> {
    const out: Record<string, Buffer> = {};
    for (let i = this.int(4); i > 0; i--) out[this.pick(['user.k', `user.${this.targets.marker}`, XATTR_GFID, XATTR_LINKTO, XATTR_LAYOUT, 'trusted.brickfs.afr', 'security.selinux'])] = this.bytes(this.pick([0, 4, 8, 16, 100]));
    return out;
  }

  /** A value the spec accepts, chosen the fuzzer's way (field names tell what a number means). */
  private value(spec: ArgSpec, field: string, fop: string): unknown {
    switch (spec.kind) {
      case 'path': return this.wellFormedNow && this.chance(0.75) ? this.pick(this.pool) : this.path();
      case 'string': return this.string();
      case 'enum': return this.pick(spec.values);
      case 'uint': case 'uint32': return this.number(field, fop);
      case 'number': return this.pick([0, Date.now(), -1e12, 1.5, 1e15]);
      case 'bool': return this.chance(0.5);
      case 'buffer': return this.bytes(this.pick([0, 1, 4, 8, 16, 100, 4096, 70_000]));
      case 'array': return Array.from({ length: this.int(4) }, () => this.value(spec.item, field, fop));
      case 'map': return field === 'xattrs' || field === 'add' ? this.xattrs() : {};
      case 'object': return this.fields(spec.fields, fop);
    }
  }

  private number(field: string, fop: string): number {
    switch (field) {
      case 'fd': return this.fd();
      case 'mode': return fop === 'access' ? this.int(8) : this.mode();
      case 'rdev': return this.pick(SAFE_RDEVS);
      case 'flags': return fop === 'setxattr' ? this.int(4) : this.pick(OPEN_FLAGS);
      case 'uid': case 'gid': return this.pick([0, 1000, 65534, 4294967295, this.int(70000)]);
      case 'size': return this.pick([0, 1, 100, 4096, 65536, 1 << 20, 16 << 20, 2 ** 31, 2 ** 40, 2 ** 53 - 1]);
      case 'offset': return this.pick([0, 1, 4095, 1 << 20, 2 ** 31, 2 ** 40, 2 ** 44, 2 ** 53 - 1]);
      case 'wantData': return this.pick([0, 1, 4096, 1 << 20, 2 ** 53 - 1]);
      default: return this.int(1000);
    }
  }

  private fields(fields: FieldsSpec, fop: string): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, spec] of Object.entries(fields)) {
      if (spec.optional && this.chance(0.6)) continue;
      out[k] = this.value(spec, k, fop);
    }
    return out;
  }

  /** Args made wrong: fields of another kind, at the edges of numbers, missing, unknown, or not a map at all. */
  private mutate(args: Record<string, unknown>, fields: FieldsSpec): unknown {
    if (this.chance(0.05)) return this.pick([null, [], 'args', 42, Buffer.from('args')]);
    const names = Object.keys(fields);
    for (let n = 1 + this.int(3); n > 0; n--) {
      const k = names.length > 0 && this.chance(0.85) ? this.pick(names) : this.pick(['bogus', '__proto__', 'constructor', 'inode', 'fd', 'owner']);
      switch (this.int(5)) {
        case 0: delete args[k]; break;
        case 1: args[k] = this.pick(EDGE_NUMBERS); break;
        case 2: args[k] = this.pick(ODD_VALUES); break;
        case 3: args[k] = this.path(); break;
        default: {
          const spec = fields[k];
          const inner = spec?.kind === 'object' ? spec.fields : undefined;
          args[k] = inner ? this.mutate(this.fields(inner, 'x'), inner) : this.pick([...EDGE_NUMBERS, ...ODD_VALUES]);
        }
      }
    }
    return args;
  }

  /** The caller a request says it is: root mostly, others, or something that is not a caller. */
  private cred(): unknown {
    switch (this.int(10)) {
      case 0: return this.pick([undefined, null, 'root', [], { uid: -1, gid: 0, groups: [], pid: 1 }, { uid: 0 }, { uid: 0, gid: 0, groups: 'x', pid: 1 },
        { uid: 0, gid: 0, groups: Array.from({ length: 100_000 }, () => 0), pid: 1 }, { uid: 2 ** 53, gid: 0, groups: [], pid: 1 }, { uid: 0, gid: 0, groups: [], pid: -2 }]);
      case 1: return { uid: 65534, gid: 65534, groups: [], pid: 77 };
      case 2: return { uid: 1000, gid: 1000, groups: [0, 4, 27], pid: -7 };
      default: return { uid: 0, gid: 0, groups: [], pid: 4242 };
    }
  }

  /** A request frame: {v, id, fop, cred, args}. */
  private request(fop: string, args: unknown, what: string, extra: Partial<FuzzFrame> = {}): FuzzFrame {
    const id = this.nextId++;
    this.pending.set(id, fop);
    let data: Buffer;
    try {
      data = pack({ v: WIRE_VERSION, id, fop, cred: this.cred(), args });
    } catch {
      data = pack({ v: WIRE_VERSION, id, fop, cred: this.cred(), args: {} });
    }
    return { what, data, how: 'binary', id, fop, ...extra };
  }

  /** The next frame. */
  next(): FuzzFrame {
    const r = this.rnd();
    if (r < 0.35) return this.wellFormed();
    if (r < 0.75) return this.mutated();
    if (r < 0.81) return { what: 'random bytes', data: this.bytes(this.pick([0, 1, 2, 5, 17, 100, 1000, 70_000])), how: 'binary' };
    if (r < 0.87) {
      const whole = this.wellFormed().data as Buffer;
      return { what: 'a truncated request', data: whole.subarray(0, this.int(whole.length)), how: 'binary' };
    }
    if (r < 0.90) return { what: 'msgpack claiming more than it holds', data: this.liar(), how: 'binary' };
    if (r < 0.95) return this.badEnvelope();
    if (r < 0.965) return this.odd();
    if (r < 0.975) {
      const w = this.wellFormed().data as Buffer;
      const data = Buffer.from(w);
      for (let i = 1 + this.int(4); i > 0 && data.length > 0; i--) data[this.int(data.length)] = this.int(256);
      return { what: 'a request with bytes flipped', data, how: 'binary' };
    }
    if (r < 0.985) return this.request(this.pick(['ping', 'PING', '', 'lookup ', '__proto__', 'constructor', 'hasOwnProperty', 'toString', 'opendir', 'readdirp']), {}, 'an unknown fop');
    if (r < 0.995) return { what: 'a hello after the hello', data: pack({ v: WIRE_VERSION, hello: this.pick([{ version: WIRE_VERSION, name: 'again' }, { version: 1 }, { version: 'x' }, null, { version: WIRE_VERSION, name: 'x'.repeat(300) }, { version: WIRE_VERSION, username: 'root', password: 'x' }]) }), how: 'binary' };
    if (r < 0.9985) return { what: 'a text message', data: this.pick(['hello', '{"v":3,"id":1,"fop":"lookup","args":{"path":"/"}}', '']), how: 'text' };
    if (r < 0.9993) return { what: 'a text message that is not UTF-8', data: Buffer.from([0xff, 0xfe, 0xc3, 0x28]), how: 'text', closes: true };
    if (r < 0.9997) {
      // Random bytes can start a valid frame header (0x82 0xc4: a masked binary frame of 68
      // bytes), which a server rightly waits to complete; RSV2 and RSV3 set in the first byte
      // make it a violation whatever follows, so the brick must close.
      const data = this.bytes(16);
      data[0] = data[0]! | 0x30;
      return { what: 'garbage beneath the WebSocket framing', data, how: 'socket', closes: true };
    }
    this.oversized ??= Buffer.concat([pack({ v: WIRE_VERSION, id: 1, fop: 'write', args: { fd: 1, offset: 0 } }), Buffer.alloc(MAX_FRAME_BYTES + 1 - 30)]);
    return { what: `a frame over ${MAX_FRAME_BYTES} bytes`, data: this.oversized, how: 'binary' };
  }

  /** A request of a fop of the table, its args as its spec says, on the pool's paths mostly. */
  private wellFormed(): FuzzFrame {
    const fop = this.pick(FOP_NAMES);
    this.wellFormedNow = true;
    const args = this.fields(FOPS[fop].args, fop);
    this.wellFormedNow = false;
    const mayBlock = fop === 'entrylk' && args.cmd === 'lock';
    return this.request(fop, args, `${fop} (well-formed)`, mayBlock ? { mayBlock } : {});
  }

  /** A request of a fop of the table with its args made wrong. */
  private mutated(): FuzzFrame {
    const fop: FopName = this.pick(FOP_NAMES);
    const fields = FOPS[fop].args as FieldsSpec;
    const args = this.mutate(this.fields(fields, fop), fields);
    // A mutation can leave valid args of a blocking lock.
    const mayBlock = fop === 'entrylk';
    return this.request(fop, args, `${fop} (mutated)`, mayBlock ? { mayBlock } : {});
  }

  /** A map, string, binary or array header claiming far more than follows. */
  private liar(): Buffer {
    const head = this.pick([
      [0xdf, 0xff, 0xff, 0xff, 0xff], [0xdb, 0x7f, 0xff, 0xff, 0xff], [0xc6, 0xff, 0xff, 0xff, 0xf0], [0xdd, 0xff, 0xff, 0xff, 0xff],
      [0x85, 0xa1, 0x76, 0x03, 0xa2, 0x69, 0x64], [0xc7, 0xff, 0x01], [0xd4, 0xff, 0x00], [0xc1], [0xcf, 0xff],
    ]);
    return Buffer.concat([Buffer.from(head), this.bytes(this.int(20))]);
  }

  /** A request-shaped map with the envelope wrong: version, id, fop or args. */
  private badEnvelope(): FuzzFrame {
    const base: Record<string, unknown> = { v: WIRE_VERSION, id: 1_000_000 + this.int(1000), fop: 'lookup', cred: { uid: 0, gid: 0, groups: [], pid: 1 }, args: { path: '/' } };
    switch (this.int(6)) {
      case 0: base.v = this.pick([undefined, 0, 1, 2, 4, -3, 3.5, '3', null, 2 ** 53, [3]]); break;
      case 1: base.id = this.pick([undefined, 0, -1, 1.5, 2 ** 53, 2 ** 64, '7', null, Number.NaN, {}]); break;
      case 2: base.fop = this.pick([undefined, 7, null, ['lookup'], { fop: 'lookup' }, Buffer.from('lookup')]); break;
      case 3: base.args = this.pick([null, [], 'x', 3, Buffer.alloc(3)]); break;
      case 4: return { what: 'a msgpack value that is not a map', data: pack(this.pick([3, 'x', [WIRE_VERSION, 1, 'lookup'], null, true, Buffer.alloc(4)])), how: 'binary' };
      default: base[this.pick(['push', 'ok', 'err', 'hello'])] = this.pick([1, 'invalidate', {}, null]);
    }
    return { what: `an envelope with ${JSON.stringify(Object.fromEntries(Object.entries(base).filter(([k]) => k !== 'args' && k !== 'cred')), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`, data: pack(base), how: 'binary' };
  }

  /** Requests no client makes: duplicate ids, deep nesting, keys that name prototype fields. */
  private odd(): FuzzFrame {
    switch (this.int(4)) {
      case 0: {
        // Written by hand: msgpackr's own packer recurses and cannot make it.
        const head = pack({ v: WIRE_VERSION, id: 2_000_000, fop: 'lookup', cred: { uid: 0, gid: 0, groups: [], pid: 1 } });
        head[0] = 0x85; // a fixmap of 5, args last
        const depth = this.pick([1000, 100_000]);
        // Each level a fixmap of one entry, "a": {...}.
        const data = Buffer.concat([head, pack('args'), Buffer.alloc(depth * 3, Buffer.from([0x81, 0xa1, 0x61])), pack({ path: '/' })]);
        return { what: `args nested ${depth} deep`, data, how: 'binary' };
      }
      case 1: return this.request('lookup', JSON.parse('{"path":"/","__proto__":{"path":"/etc"}}'), 'args with a __proto__ key');
      case 2: return this.request('setattr', { path: this.pick(this.pool), attrs: JSON.parse('{"__proto__":{"mode":2559}}') }, 'attrs with a __proto__ key');
      default: return this.request('writev', { fd: this.fd(), extents: Array.from({ length: 4096 }, (_, i) => ({ offset: i * 7, data: Buffer.alloc(1) })) }, 'writev of 4096 extents');
    }
  }

  /** What a reply tells: the fd an open or create got (a released fd stays on the list: EBADF is worth sending too). */
  observe(r: ReplyFrame): void {
    const fop = this.pending.get(r.id);
    if (fop === undefined) return;
    this.pending.delete(r.id);
    const fd = (r.ok as { fd?: unknown } | undefined)?.fd;
    if ((fop === 'open' || fop === 'create') && typeof fd === 'number') this.fds.add(fd);
  }

  /** The connection closed: its fds and pending requests are gone with it. */
  reset(): void {
    this.fds.clear();
    this.pending.clear();
  }
}
