// Certificates made with openssl for tests, the way docs/security.md ("TLS") tells an
// administrator to make them: a CA, and per host or client a key and a certificate it signs.
// useTestTls() gives the whole test process (and every brick, daemon and mount it spawns) one
// certificate directory, for BRICKFS_TEST_TLS=1 runs of the mount suites.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SECURE_ACCESS_FILE, TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE } from '../../lib/tls.js';

/** A certificate and its key, as PEM files. */
export interface CertFiles {
  cn: string;
  cert: string;
  key: string;
}

/** A CA: its certificate signs the others. */
export interface Ca extends CertFiles {
  dir: string;
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Makes a CA named cn in dir (created if need be). */
export function makeCa(dir: string, cn: string): Ca {
  fs.mkdirSync(dir, { recursive: true });
  const key = path.join(dir, `${cn}.key`);
  const cert = path.join(dir, `${cn}.pem`);
  openssl(['req', '-x509', ...KEY, '-keyout', key, '-out', cert, '-days', '30', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { dir, cn, cert, key };
}

/**
 * Makes a certificate for cn signed by ca, good as a TLS server's and a client's; san adds
 * subjectAltNames (IP:127.0.0.1), which gRPC (etcd's clients) checks against the address.
 */
export function makeCert(ca: Ca, cn: string, san?: string): CertFiles {
  const key = path.join(ca.dir, `${cn}.key`);
  const cert = path.join(ca.dir, `${cn}.pem`);
  const csr = path.join(ca.dir, `${cn}.csr`);
  const ext = path.join(ca.dir, `${cn}.ext`);
  openssl(['req', '-new', ...KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  fs.writeFileSync(ext, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n${san ? `subjectAltName=${san}\n` : ''}`);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '30', '-extfile', ext]);
  fs.rmSync(csr);
  fs.rmSync(ext);
  return { cn, cert, key };
}

/** Lays out a certificate directory as brickfs reads it (brickfs.pem, .key, .ca); secure-access on request. */
export function certDir(dir: string, ca: Ca, cert: CertFiles, opts: { secureAccess?: boolean } = {}): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.copyFileSync(cert.cert, path.join(dir, TLS_CERT_FILE));
  fs.copyFileSync(cert.key, path.join(dir, TLS_KEY_FILE));
  fs.chmodSync(path.join(dir, TLS_KEY_FILE), 0o600);
  fs.copyFileSync(ca.cert, path.join(dir, TLS_CA_FILE));
  if (opts.secureAccess) fs.writeFileSync(path.join(dir, SECURE_ACCESS_FILE), '');
  return dir;
}

/** Whether this run puts the volumes the helpers make under TLS (BRICKFS_TEST_TLS=1). */
export function testTls(): boolean {
  return process.env.BRICKFS_TEST_TLS === '1';
}

let shared: string | undefined;

/**
 * Under BRICKFS_TEST_TLS=1: one CA and one host certificate for this test process (unless
 * BRICKFS_TLS_DIR already names a directory), its directory in BRICKFS_TLS_DIR, which every process the tests spawn inherits. Made on first
 * use, removed at exit. The volume options it asks for, or none without the switch.
 */
export function useTestTls(): Record<string, string> {
  if (!testTls()) return {};
  // A test that made its own certificate directory keeps it.
  if (!shared && !process.env.BRICKFS_TLS_DIR) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-tls-'));
    const ca = makeCa(path.join(root, 'ca'), 'brickfs-test-ca');
    shared = certDir(path.join(root, 'host'), ca, makeCert(ca, 'brickfs-test-host'));
    process.env.BRICKFS_TLS_DIR = shared;
    process.once('exit', () => fs.rmSync(root, { recursive: true, force: true }));
  }
  return { 'client.ssl': 'on', 'server.ssl': 'on' };
}

/**
 * Revokes cert in ca's database (made on first use, beside the CA) and writes the CA's
 * revocation list; returns its path (a PEM file, as ssl.crl-path takes it). As docs/security.md
 * tells an administrator: openssl ca -revoke, then -gencrl.
 */
export function revoke(ca: Ca, cert: CertFiles): string {
  const cnf = path.join(ca.dir, 'ca.cnf');
  if (!fs.existsSync(cnf)) {
    fs.writeFileSync(path.join(ca.dir, 'index.txt'), '');
    fs.writeFileSync(path.join(ca.dir, 'crlnumber'), '01\n');
    fs.writeFileSync(cnf, `[ca]\ndefault_ca = d\n[d]\ndatabase = ${ca.dir}/index.txt\ncrlnumber = ${ca.dir}/crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n`);
  }
  openssl(['ca', '-config', cnf, '-revoke', cert.cert, '-keyfile', ca.key, '-cert', ca.cert]);
  const crl = path.join(ca.dir, `${ca.cn}.crl.pem`);
  openssl(['ca', '-config', cnf, '-gencrl', '-keyfile', ca.key, '-cert', ca.cert, '-out', crl]);
  return crl;
}

/**
 * The options a protocol/client made by hand (not from a helper's volfile) needs to reach the
 * bricks the helpers make: under BRICKFS_TEST_TLS=1 ssl on, none otherwise.
 */
export function testTlsClientOptions(): Record<string, string> {
  return Object.keys(useTestTls()).length > 0 ? { ssl: 'on' } : {};
}
