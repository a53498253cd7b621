// Moved to lib/mgmt/client.ts; kept only for client/graph-switch.ts until its import names
// lib/mgmt/client.js (then this file goes).
export { pollVolfile, type ServerAddr } from '../../lib/mgmt/client.js';
