import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArgs, runCli } from './cli.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'cli-compat-'));
const write = (name: string, schema: unknown): string => {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(schema));
  return file;
};
const v1 = write('v1.avsc', { type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }] });
const v2 = write('v2.avsc', { type: 'record', name: 'R', fields: [{ name: 'a', type: 'long' }, { name: 'b', type: 'string' }] });
const broken = write('broken.avsc', { type: 'record', name: 'R', fields: [{ name: 'a', type: 'nope' }] });

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {}, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('composer CLI', () => {
  it('compat: exit 0 and "compatible" when the reader reads the writer', async () => {
    expect(await cli('compat', v1, v1)).toMatchObject({ code: 0, out: 'compatible' });
  });

  it('compat: exit 1 with each reason', async () => {
    const r = await cli('compat', v2, v1);
    expect(r.code).toBe(1);
    expect(r.out).toBe('incompatible\n  b: field b is in the reader but not in the writer, and has no default');
    const forward = await cli('compat', v2, v1, '--mode', 'FORWARD');
    expect(forward.code).toBe(1);
    expect(forward.out).toContain('a: reader type int cannot read writer type long');
    expect((await cli('compat', v2, v1, '--mode=NONE')).code).toBe(0);
  });

  it('compat: invalid Avro is exit 1, usage errors are exit 2', async () => {
    expect((await cli('compat', broken, v1)).code).toBe(1);
    expect((await cli('compat', v1)).code).toBe(2);
    expect((await cli('compat', v1, v1, '--mode', 'SIDEWAYS')).code).toBe(2);
    expect((await cli('compat', path.join(dir, 'missing.avsc'), v1)).code).toBe(2);
    expect((await cli('frobnicate')).code).toBe(2);
    expect((await cli()).code).toBe(2);
    expect((await cli('apply')).code).toBe(2);
    expect((await cli('list', '--colour', 'red')).code).toBe(2);
  });

  it('parses flags in both forms', () => {
    expect(parseArgs(['apply', '-f', 'specs', '--force', '--registry-dir=/tmp/r'])).toEqual({ command: 'apply', positional: [], flags: { f: 'specs', force: true, 'registry-dir': '/tmp/r' } });
    expect(parseArgs(['--', 'export', 'terraform', '--out', 'x'])).toEqual({ command: 'export', positional: ['terraform'], flags: { out: 'x' } });
  });
});
