import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { commands, runCli } from './cli.ts';

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
  // Commands load on first use; load them once here, not inside the first test's time budget.
  beforeAll(async () => {
    for (const load of commands.values()) await load();
  }, 60_000);

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

  it('names an unknown option, a missing value and a value given to a flag (exit 2, with the command help)', async () => {
    const colour = await cli('list', '--colour', 'red');
    expect(colour.code).toBe(2);
    expect(colour.err).toMatch(/^error: unknown option --colour \(known: --json, --registry-dir, --help\)\n\nusage: npm run composer -- list/);
    expect((await cli('apply', '-f')).err).toMatch(/^error: option --file needs a value/);
    expect((await cli('apply', '-f', 'x', '--force=yes')).err).toMatch(/^error: option --force is a flag and takes no value/);
    expect((await cli('--registry-dir', 'x', 'list')).err).toMatch(/^error: the command comes first, before --registry-dir/);
  });

  it('prints help for the CLI and for every command, naming each option', async () => {
    const top = await cli('--help');
    expect(top.code).toBe(0);
    for (const name of commands.keys()) expect(top.out).toContain(`\n  ${name} `);
    for (const name of commands.keys()) {
      const r = await cli(name, '--help');
      expect(r.code, name).toBe(0);
      expect(r.out, name).toMatch(new RegExp(`^usage: npm run composer -- ${name}`));
      const { help } = await commands.get(name)!();
      for (const option of Object.keys(help.options)) expect(r.out, name).toContain(`--${option}`);
    }
  });

  it('reads flags in both forms and -f as --file', async () => {
    expect((await cli('--', 'compat', v1, v1, '--mode=FULL')).code).toBe(0);
    const missing = path.join(dir, 'missing');
    expect(await cli('plan', `--file=${missing}`)).toEqual({ code: 1, out: '', err: `${missing}: (file): no such file or folder: ${missing} [file-missing]` });
  });
});
