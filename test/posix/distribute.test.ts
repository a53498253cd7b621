// POSIX conformance (test/posix/scenarios.ts) on a distribute volume of 3 bricks.
import { posixSuite } from './suite.js';

posixSuite('distribute 3', 3, {});
