// Who may use a brick (GlusterFS's xlators/protocol/auth: login and addr). login: the
// credentials a client says in its hello, against the volume's client credential and its
// services' credential from the brick volfile. addr: the connection's remote address against
// auth.allow / auth.reject, lists of addresses with * and ? wildcards, or CIDR networks.
import { createHash, timingSafeEqual } from 'node:crypto';
import net from 'node:net';

/** What a connection authenticated as. */
export type ConnKind =
  /** The brick volfile holds no credentials (hand-written, tests): every client is trusted, as before credentials existed. */
  | 'open'
  /** The volume's client credential: a mount. */
  | 'client'
  /** The pool's own services' credential: rebalance, self-heal. */
  | 'service';

/** One entry of an address list: an address with wildcards, or a network (CIDR). */
const ENTRY = '[0-9A-Fa-f.:*?]+(?:/[0-9]{1,3})?';

/** An address list as a volume option takes it: entries separated by commas (spaces allowed), or nothing. */
export const ADDRESS_LIST_PATTERN = {
  regex: `^\\s*(?:${ENTRY}(?:\\s*,\\s*${ENTRY})*)?\\s*$`,
  what: 'a comma-separated list of addresses, with * and ? wildcards (192.168.1.*) or as networks (10.0.0.0/8)',
} as const;

/** An address as the check sees it: IPv4 clients of a dual-stack socket without their ::ffff: prefix. */
export function plainAddress(addr: string | undefined): string {
  if (!addr) return '';
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m ? m[1]! : addr.toLowerCase();
}

/** A parsed address list: matches() says whether an address is on it. */
export class AddressList {
  private readonly globs: RegExp[] = [];
  private readonly nets = new net.BlockList();
  private hasNets = false;

  constructor(readonly text: string) {
    for (const raw of text.split(',')) {
      const entry = raw.trim().toLowerCase();
      if (!entry) continue;
      const slash = entry.indexOf('/');
      if (slash >= 0) {
        const base = entry.slice(0, slash);
        const family = net.isIPv4(base) ? 'ipv4' : net.isIPv6(base) ? 'ipv6' : undefined;
        const prefix = Number(entry.slice(slash + 1));
        if (!family || prefix > (family === 'ipv4' ? 32 : 128)) throw new RangeError(`"${entry}" is not a network (ADDRESS/PREFIX)`);
        this.nets.addSubnet(base, prefix, family);
        this.hasNets = true;
        continue;
      }
      const re = entry.replace(/[.]/g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.');
      this.globs.push(new RegExp(`^${re}$`));
    }
  }

  get empty(): boolean {
    return this.globs.length === 0 && !this.hasNets;
  }

  matches(addr: string): boolean {
    if (this.globs.some((g) => g.test(addr))) return true;
    if (!this.hasNets) return false;
    const family = net.isIPv4(addr) ? 'ipv4' : net.isIPv6(addr) ? 'ipv6' : undefined;
    return family !== undefined && this.nets.check(addr, family);
  }
}

/**
 * Whether an address may connect: not on the reject list, and on the allow list (GlusterFS's
 * auth/addr: reject is read first, and an address on neither list is refused).
 */
export function addressAllowed(addr: string, allow: AddressList, reject: AddressList): boolean {
  if (reject.matches(addr)) return false;
  return allow.matches(addr);
}

/** Compares two secrets in time that does not depend on where they differ. */
export function sameSecret(a: string, b: string): boolean {
  const h = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(h(a), h(b));
}
