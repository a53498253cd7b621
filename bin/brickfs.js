#!/usr/bin/env node
// The brickfs command: a shim over the compiled CLI (run `npm run build` first).
import { main } from '../dist/client/cli/index.js';

process.exitCode = await main(process.argv.slice(2));
