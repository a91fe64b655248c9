#!/usr/bin/env node
// Package bin for the composer CLI (`npx composer …`): runs composer/cli.ts through tsx.
import { register } from 'tsx/esm/api';

register();
process.env.METADATA_SERVER_DETECTION ??= 'none';
const { runCli } = await import('../composer/cli.ts');
const code = await runCli(process.argv.slice(2), process.env, { out: (l) => console.log(l), err: (l) => console.error(l) });
process.exit(code);
