#!/usr/bin/env node
// The bundle is CommonJS (rolldown.config.ts): require() loads it without the ES module loader's per-module cost.
import { createRequire } from 'node:module';

createRequire(import.meta.url)('../dist/cli/main.js');
