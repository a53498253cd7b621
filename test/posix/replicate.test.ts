// POSIX conformance (test/posix/scenarios.ts) on a replica 3 volume.
import { posixSuite } from './suite.js';

posixSuite('replicate 3', 3, { replica: 3 });
