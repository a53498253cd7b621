import { randomBytes } from 'node:crypto';
import { XATTR_GFID, type Xattrs } from './fops.js';

/** A new file identity: 16 random bytes, as GlusterFS's gfid (a UUID). */
export function newGfid(): Buffer {
  return randomBytes(16);
}

/**
 * The gfid a new entry is asked to get: the one the caller put in the fop's xattrs (the
 * mount asks for one per entry, GlusterFS's gfid-req), else a new one. Every copy of the
 * entry, on every brick and replica, gets the same.
 */
export function gfidFor(xattrs: Xattrs | undefined): Buffer {
  const asked = xattrs?.[XATTR_GFID];
  return asked?.length === 16 ? Buffer.from(asked) : newGfid();
}
