#!/usr/bin/env node
// mount(8)'s helper for -t brickfs (installed as /sbin/mount.brickfs by `brickfs install`):
// a shim over the compiled helper (run `npm run build` first).
import { helperMain } from '../dist/client/mount-helper.js';

process.exitCode = await helperMain(process.argv.slice(2));
