#!/usr/bin/env node
// The `taskapp` CLI entry: the code lives in dist/cli.js (built from src/cli/cli.ts).
import '../dist/cli.js'
