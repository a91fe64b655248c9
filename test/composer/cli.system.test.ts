/**
 * `npm run composer -- …` as a real process against a registry folder and the
 * Pub/Sub emulator: apply a folder of specs, plan is then empty, a bad spec
 * fails with file/path/rule, list/describe/deprecate, export terraform.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { uniqueEventType } from '../fixtures/event-type-names.ts';
import { runCli } from '../../composer/cli.ts';

const root = path.resolve(import.meta.dirname, '../..');
const work = mkdtempSync(path.join(tmpdir(), 'composer-cli-'));
const registryDir = path.join(work, 'registry');
const env = { ...process.env, PUBSUB_EMULATOR_HOST: inject('pubsubHost'), GCP_PROJECT: inject('projectId'), REGISTRY_DIR: registryDir, METADATA_SERVER_DETECTION: 'none' };

/** The CLI as a real process (exit codes, `npm run composer` entry). */
function composerProcess(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'composer/cli.ts', ...args], { cwd: root, env, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, out: stdout, err: stderr });
    });
  });
}

/** The CLI in-process (same code path, no process start-up per command). */
async function composer(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, env, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.map((l) => `${l}\n`).join(''), err: err.join('\n') };
}

const name = uniqueEventType('cli', 'signup');
const specsDir = path.join(work, 'specs');
mkdirSync(specsDir);
writeFileSync(
  path.join(specsDir, `${name}.yaml`),
  `name: ${name}\nowner: growth\npriority: normal\nschema: ./signup.avsc\n`,
);
writeFileSync(
  path.join(specsDir, 'signup.avsc'),
  JSON.stringify({ type: 'record', name: 'Signup', fields: [{ name: 'userId', type: 'string', semanticType: 'userId' }, { name: 'email', type: 'string', semanticType: 'email' }] }),
);

describe('composer CLI', () => {
  it('apply, plan, list, describe, check, export, deprecate', async () => {
    const plan0 = await composer('plan', '-f', specsDir);
    expect(plan0.code).toBe(0);
    expect(plan0.out).toContain('registry: register event type');
    expect(plan0.out).toContain(`create etlSubscription events-${name}-etl`);

    const applied = await composerProcess('apply', '-f', specsDir);
    expect(applied).toMatchObject({ code: 0 });
    expect(applied.out).toContain(`${name}: created (schema version 1); provisioning provisioned`);

    expect(await composer('plan', '-f', specsDir)).toMatchObject({ code: 0, out: 'no changes\n' });
    expect((await composer('list')).out).toContain(`${name}\tgrowth\tnormal\tactive\tv1\tprovisioned`);
    expect(JSON.parse((await composer('describe', name)).out)).toMatchObject({ settings: { name }, versions: [{ version: 1 }] });

    // An incompatible candidate: check exits 1 naming the field.
    const bad = path.join(work, 'bad.yaml');
    writeFileSync(bad, `name: ${name}\nowner: growth\nschema:\n  type: record\n  name: Signup\n  fields:\n    - {name: userId, type: string, semanticType: userId}\n    - {name: email, type: string, semanticType: email}\n    - {name: age, type: int}\n`);
    const check = await composer('check', '-f', bad);
    expect(check.code).toBe(1);
    expect(check.out).toContain('age: field age is in the reader but not in the writer, and has no default (vs version 1, backward)');
    const refused = await composerProcess('apply', '-f', bad);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('SCHEMA_INCOMPATIBLE');

    const invalid = path.join(work, 'invalid.yaml');
    writeFileSync(invalid, 'name: X\nowner: growth\npriority: urgent\nschema: {type: record, name: R, fields: []}\n');
    const v = await composer('apply', '-f', invalid);
    expect(v.code).toBe(1);
    expect(v.err).toContain(`${invalid}: priority: priority must be one of high, normal, low, not "urgent" [unknown-priority]`);
    expect(v.err).toContain(`${invalid}: name:`);

    const out = path.join(work, 'tf');
    const exported = await composer('export', 'terraform', '--out', out);
    expect(exported.code).toBe(0);
    expect(readdirSync(out).length).toBeGreaterThan(0);

    const registryExport = path.join(work, 'registry.json');
    expect((await composer('export', 'registry', '--out', registryExport)).code).toBe(0);
    expect(JSON.parse(readFileSync(registryExport, 'utf8'))).toMatchObject({ eventTypes: [{ settings: { name } }] });

    // Declarative: with --prune, a type missing from the folder would be deprecated.
    const emptyDir = path.join(work, 'empty');
    mkdirSync(emptyDir);
    const prune = await composer('plan', '-f', emptyDir, '--prune');
    expect(prune.out).toContain(`${name}:\n  registry: status: active → deprecated`);

    const dep = await composer('deprecate', name);
    expect(dep.code).toBe(0);
    expect(dep.out).toContain(`${name}: deprecated; provisioning draining`);
    expect((await composer('describe', 'no_such_type')).code).toBe(1);
  });
});
