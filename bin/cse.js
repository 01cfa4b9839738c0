#!/usr/bin/env node
// The `cse` command: a thin launcher for the compiled CLI (run `npm run build` first).
require('../dist/cli/cse.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
