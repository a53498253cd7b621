import type { IncomingHttpHeaders } from 'node:http';

/**
 * Whether an HTTP request (a WebSocket upgrade included) was made by a web browser on behalf
 * of a page. Browsers send Origin with every WebSocket handshake and every cross-origin or
 * non-GET request, and Sec-Fetch-Site and Sec-Fetch-Dest with every request (a page on a
 * host name rebound to this address included); brickfs' own clients (protocol/client, the
 * CLI, the mount) send none of them. (Sec-Fetch-Mode proves nothing: Node's fetch sends it.)
 * A page must never reach a brick or the management daemon: they trust the caller's word on
 * who it is.
 */
export function fromBrowser(headers: IncomingHttpHeaders): boolean {
  return headers.origin !== undefined || headers['sec-fetch-site'] !== undefined || headers['sec-fetch-dest'] !== undefined;
}
