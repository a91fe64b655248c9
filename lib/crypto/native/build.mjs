/* eslint-disable no-console -- a build script reports on its console */
// Builds aead.node (aead.c) against the running Node's headers with the system C compiler:
// `npm run build:native`, and on every `npm ci` (postinstall, with --optional). Node-API is
// ABI-stable, and OpenSSL's symbols come from the node binary itself, so the result works
// with any Node 20+ on the same platform. If it cannot build it exits non-zero with the
// compiler's message, or with --optional only warns; lib/crypto/aead.ts then uses node:crypto.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const optional = process.argv.includes('--optional');
const fail = (message) => {
  console.error(`build:native: ${message}${optional ? '; the ETL seals with node:crypto instead (about 5× the CPU per value)' : ''}`);
  process.exit(optional ? 0 : 1);
};

const here = path.dirname(fileURLToPath(import.meta.url));
const headers = path.join(path.dirname(process.execPath), '..', 'include', 'node');
if (!existsSync(path.join(headers, 'node_api.h')) || !existsSync(path.join(headers, 'openssl', 'evp.h'))) {
  fail(`Node's headers (node_api.h, openssl/evp.h) are not in ${headers}`);
}
const compiler = process.env.CC ?? 'cc';
const out = path.join(here, 'aead.node');
try {
  execFileSync(compiler, ['-O2', '-Wall', '-Werror', '-shared', '-fPIC', '-fvisibility=hidden', `-I${headers}`, path.join(here, 'aead.c'), '-o', out], { stdio: 'inherit' });
} catch (err) {
  fail(`${compiler} failed: ${err.message}`);
}
console.log(`build:native: ${path.relative(process.cwd(), out)} built with ${compiler}`);
