// POSIX conformance (test/posix/scenarios.ts) on a stripe 2 volume (64 KiB blocks).
import { posixSuite } from './suite.js';

posixSuite('stripe 2', 2, { stripe: 2, blockSize: '64KiB' });
