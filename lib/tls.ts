// TLS with mutual certificates, as GlusterFS does it (rpc-transport/socket's ssl options,
// /etc/ssl/glusterfs.{pem,key,ca}, /var/lib/glusterd/secure-access): one certificate
// directory per host holds this host's certificate and key and the CA that signs every
// certificate of the pool and its clients. Bricks (server.ssl), clients (client.ssl), the
// management daemon and its callers (secure-access) all read it. docs/security.md, "TLS".
import fs from 'node:fs';
import path from 'node:path';
import type { PeerCertificate, TLSSocket } from 'node:tls';

/** Where a host keeps its certificates unless $BRICKFS_TLS_DIR (or a daemon's --tls-dir) says otherwise. */
export const DEFAULT_TLS_DIR = '/etc/ssl/brickfs';
/** This host's certificate (PEM; a chain may follow it). */
export const TLS_CERT_FILE = 'brickfs.pem';
/** Its private key (PEM). */
export const TLS_KEY_FILE = 'brickfs.key';
/** The CA certificates a peer's certificate must chain to (PEM, one or more). */
export const TLS_CA_FILE = 'brickfs.ca';
/**
 * Present: the management path (daemon API, CLI, mounts' volfile fetches, peers) uses TLS.
 * GlusterFS keeps it in /var/lib/glusterd; here it sits beside the certificates, because the
 * CLI and a mount do not know a daemon's state directory but all read the certificate directory.
 */
export const SECURE_ACCESS_FILE = 'secure-access';

/** A certificate directory that cannot be used: what is missing and how to make it. */
export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

/** The certificate directory of this process: $BRICKFS_TLS_DIR, else /etc/ssl/brickfs. */
export function tlsDir(): string {
  const env = process.env.BRICKFS_TLS_DIR;
  return env ? path.resolve(env) : DEFAULT_TLS_DIR;
}

/** Whether the management path is to use TLS on this host (the secure-access file exists). */
export function secureAccess(dir = tlsDir()): boolean {
  return fs.existsSync(path.join(dir, SECURE_ACCESS_FILE));
}

/** What a TLS endpoint presents and trusts. */
export interface TlsMaterial {
  dir: string;
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/**
 * Reads the certificate, key and CA of a certificate directory (read at each use, so renewed
 * files count from the next connection). Throws TlsConfigError naming what is missing.
 */
export function loadTls(dir = tlsDir()): TlsMaterial {
  const read = (name: string, what: string): Buffer => {
    const file = path.join(dir, name);
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw new TlsConfigError(
        `TLS needs ${what} in ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
        'docs/security.md ("TLS") says how to make it with openssl; set BRICKFS_TLS_DIR for another directory');
    }
  };
  return { dir, cert: read(TLS_CERT_FILE, 'this host\'s certificate'), key: read(TLS_KEY_FILE, 'its private key'), ca: read(TLS_CA_FILE, 'the CA certificate') };
}

/** What a server adds to the certificate directory (GlusterFS's ssl.crl-path and ssl.cipher-list). */
export interface ServerTlsExtras {
  /** Certificate revocation lists (PEM): a certificate they revoke is refused in the handshake. */
  crl?: Buffer[];
  /** OpenSSL's cipher list for TLS 1.2 (TLS 1.3's suites are all strong and stay as they are). */
  ciphers?: string;
}

/**
 * A server's side: present our certificate, ask for the peer's and refuse (in the handshake)
 * one that does not chain to the CA, or none, or one a CRL revokes.
 */
export function serverTlsOptions(m: TlsMaterial, extras: ServerTlsExtras = {}): { cert: Buffer; key: Buffer; ca: Buffer; requestCert: true; rejectUnauthorized: true; minVersion: 'TLSv1.2'; crl?: Buffer[]; ciphers?: string } {
  return {
    cert: m.cert, key: m.key, ca: m.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2',
    ...(extras.crl && extras.crl.length > 0 ? { crl: extras.crl } : {}),
    ...(extras.ciphers ? { ciphers: extras.ciphers } : {}),
  };
}

/**
 * The CRLs at path (GlusterFS's ssl.crl-path): a PEM file, or every regular file of a
 * directory (OpenSSL's hashed names, *.pem, *.r0...), read at each use. Throws TlsConfigError
 * when path holds none.
 */
export function loadCrls(at: string): Buffer[] {
  let files: string[];
  try {
    files = fs.statSync(at).isDirectory()
      ? fs.readdirSync(at).map((n) => path.join(at, n)).filter((f) => fs.statSync(f).isFile()).sort()
      : [at];
  } catch (e) {
    throw new TlsConfigError(`ssl.crl-path ${at}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const crls = files.map((f) => fs.readFileSync(f)).filter((b) => b.includes('-----BEGIN X509 CRL-----'));
  if (crls.length === 0) throw new TlsConfigError(`ssl.crl-path ${at} holds no PEM certificate revocation list (openssl ca -gencrl makes one; docs/security.md)`);
  return crls;
}

/**
 * A client's side: present our certificate and accept only a server whose certificate chains
 * to the CA. The server's name is not compared with its certificate's, as GlusterFS does not:
 * the CA is the trust boundary (it signs only the pool's hosts and their clients), and bricks
 * are named by whatever address a volume was created with.
 */
export function clientTlsOptions(m: TlsMaterial): { cert: Buffer; key: Buffer; ca: Buffer; rejectUnauthorized: true; checkServerIdentity: () => undefined; minVersion: 'TLSv1.2' } {
  return { cert: m.cert, key: m.key, ca: m.ca, rejectUnauthorized: true, checkServerIdentity: () => undefined, minVersion: 'TLSv1.2' };
}

/** What went wrong in a TLS error, in a line: OpenSSL's reason ("wrong version number") rather than its whole message. */
export function tlsReason(e: Error): string {
  const { code, reason } = e as Error & { code?: string; reason?: string };
  return reason ? `${code ? `${code}: ` : ''}${reason}` : e.message;
}

/** The common name of the certificate a TLS peer presented (and the handshake verified), if any. */
export function peerCommonName(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const cert: PeerCertificate = socket.getPeerCertificate();
  const cn = cert?.subject?.CN as string | string[] | undefined;
  return Array.isArray(cn) ? cn[0] : cn;
}

/** A list of certificate names as auth.ssl-allow takes it: comma-separated, * and ? wildcards, no control characters. */
export const NAME_LIST_PATTERN = {
  regex: '^[^\\x00-\\x1f,]*(?:,[^\\x00-\\x1f,]*)*$',
  what: 'a comma-separated list of certificate common names, with * and ? wildcards (client*.example.com); * allows every certificate of the CA',
} as const;

/** A parsed name list (GlusterFS's auth.ssl-allow, matched as fnmatch would): matches() says whether a name is on it. */
export class NameList {
  private readonly globs: RegExp[];

  constructor(readonly text: string) {
    this.globs = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((glob) =>
      new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's'));
  }

  matches(name: string): boolean {
    return this.globs.some((g) => g.test(name));
  }
}
