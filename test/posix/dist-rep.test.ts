// POSIX conformance (test/posix/scenarios.ts) on distribute over two replica pairs (2 x 2).
import { posixSuite } from './suite.js';

posixSuite('distribute over replica sets (2 x 2)', 4, { replica: 2 });
