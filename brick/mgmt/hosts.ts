// "Is this host name this machine?" A brick whose host names this machine belongs to this
// daemon (peers.ts ownerOf); any other host must be a member of the pool.
import dns from 'node:dns/promises';
import net from 'node:net';
import os from 'node:os';

/** Every address of this host's interfaces (IPv6 scope suffixes removed). */
function localAddresses(): Set<string> {
  const out = new Set<string>(['::1', '::ffff:127.0.0.1']);
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) out.add(a.address.replace(/%.*$/, '').toLowerCase());
  }
  return out;
}

/** Whether addr is a loopback address or one of this host's interfaces. */
export function isLocalAddress(addr: string, local: Set<string> = localAddresses()): boolean {
  const a = addr.replace(/%.*$/, '').toLowerCase();
  return a.startsWith('127.') || a.startsWith('::ffff:127.') || local.has(a);
}

/** Whether host names this machine: localhost, 127.x, ::1, the hostname or one of its addresses. */
export async function isThisHost(host: string, lookupTimeoutMs = 3000): Promise<boolean> {
  const h = host.toLowerCase();
  const local = localAddresses();
  if (h === 'localhost' || h.endsWith('.localhost') || h === os.hostname().toLowerCase()) return true;
  if (net.isIP(h)) return isLocalAddress(h, local);
  // A name such as this host's FQDN: local when every address it resolves to is ours.
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), lookupTimeoutMs);
    });
    const addrs = await Promise.race([dns.lookup(h, { all: true }), timeout]);
    return addrs.length > 0 && addrs.every((a) => isLocalAddress(a.address, local));
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
