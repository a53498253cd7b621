// Registers every client-side translator type with the volfile registry.
import './protocol/client.js';
import './cluster/distribute/index.js';
import './performance/quick-read.js';
import './performance/open-behind.js';
import './performance/write-behind.js';
import './performance/io-cache.js';
import './performance/read-ahead.js';
import './performance/nl-cache.js';
import './performance/readdir-ahead.js';
import './performance/md-cache.js';
import './cluster/stripe/index.js';
import './cluster/replicate/index.js';
import './debug/trace.js';
// A brick's bottom translator in a client graph: a volfile of storage/posix alone mounts a
// local directory through the FUSE bridge with no network and no caches, the bare FUSE
// passthrough that benchmarks compare against (scripts/passthrough-mount.sh).
import '../../brick/xlators/storage/posix.js';
