import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSpecFile, loadSpecs, parseSpecText, validateSpec } from './spec.ts';

const specsDir = path.resolve(import.meta.dirname, '../test/fixtures/specs');

describe('spec loading', () => {
  it('loads every example spec (YAML, JSON, schema by path)', async () => {
    const { specs, problems } = await loadSpecs(specsDir);
    expect(problems).toEqual([]);
    expect(specs.map((s) => s.spec.name)).toEqual(['build_finished', 'page_view', 'track_played', 'user_profile_updated']);
    const profile = specs.find((s) => s.spec.name === 'user_profile_updated')!.spec;
    expect(profile).toMatchObject({ owner: 'identity', priority: 'high', storage: ['bigquery', 'gcs'], partitioning: 'hourly', compatibility: 'BACKWARD_TRANSITIVE' });
    expect(profile.schema.name).toBe('UserProfileUpdated');
  });

  it('applies defaults', async () => {
    const r = await validateSpec({ name: 'min_type', owner: 'team-a', schema: { type: 'record', name: 'M', fields: [] } });
    expect(r).toMatchObject({ ok: true, spec: { description: '', priority: 'normal', storage: ['gcs'], partitioning: 'hourly', retentionDays: 365, compatibility: 'BACKWARD_TRANSITIVE' } });
  });

  it('collects every problem, naming file, field path and rule', async () => {
    const r = await validateSpec(
      {
        name: 'Bad-Name',
        owner: 'team-a',
        priority: 'urgent',
        storage: 'tape',
        partitioning: 'weekly',
        retentionDays: 0,
        compatibility: 'SIDEWAYS',
        shardsPerPeriod: 2.5,
        colour: 'blue',
        schema: {
          type: 'record',
          name: 'X',
          fields: [
            { name: 'email', type: 'string', semanticType: 'email' },
            { name: 'nick', type: 'string', semanticType: 'nickname' },
          ],
        },
      },
      { file: 'specs/bad.yaml' },
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.every((p) => p.file === 'specs/bad.yaml')).toBe(true);
    expect(r.problems.map((p) => [p.path, p.rule])).toEqual([
      ['colour', 'unknown-field'],
      ['name', 'name-pattern'],
      ['priority', 'unknown-priority'],
      ['storage', 'unknown-storage'],
      ['partitioning', 'unknown-partitioning'],
      ['retentionDays', 'retention-range'],
      ['shardsPerPeriod', 'shards-range'],
      ['compatibility', 'unknown-compatibility'],
      ['schema.nick', 'unknown-semantic-type'],
      ['schema.email', 'missing-subject'],
    ]);
  });

  it('takes shardsPerPeriod from 1 to 256, kept in the settings only above 1', async () => {
    const schema = { type: 'record', name: 'X', fields: [{ name: 'a', type: 'string' }] };
    const four = await validateSpec({ name: 'abc', owner: 'team-a', shardsPerPeriod: 4, schema });
    expect(four).toMatchObject({ ok: true, spec: { shardsPerPeriod: 4 } });
    const one = await validateSpec({ name: 'abc', owner: 'team-a', shardsPerPeriod: 1, schema });
    expect(one.ok && 'shardsPerPeriod' in one.spec).toBe(false);
    for (const bad of [0, 257, '4', -1]) {
      const r = await validateSpec({ name: 'abc', owner: 'team-a', shardsPerPeriod: bad, schema });
      expect(r.ok ? [] : r.problems.map((p) => [p.path, p.rule]), String(bad)).toEqual([['shardsPerPeriod', 'shards-range']]);
    }
  });

  it('reports invalid Avro and non-record schemas', async () => {
    const bad = await validateSpec({ name: 'abc', owner: 'team-a', schema: { type: 'record', name: 'X', fields: [{ name: 'a', type: 'strin' }] } });
    expect(bad.ok ? [] : bad.problems.map((p) => p.rule)).toEqual(['invalid-avro']);
    const notRecord = await validateSpec({ name: 'abc', owner: 'team-a', schema: { type: 'array', items: 'string' } });
    expect(notRecord.ok ? [] : notRecord.problems.map((p) => p.rule)).toEqual(['not-a-record']);
  });

  it('accepts a valid recursive schema whose default holds the enclosing record (issue 21, defect 5)', async () => {
    const schema = { type: 'record', name: 'S', fields: [{ name: 'a', type: { type: 'array', items: 'S' }, default: [{ a: [] }] }] };
    expect(await validateSpec({ name: 'abc', owner: 'team-a', schema })).toMatchObject({ ok: true });
    const badDefault = { type: 'record', name: 'S', fields: [{ name: 'a', type: { type: 'array', items: 'S' }, default: [{ a: 5 }] }] };
    const bad = await validateSpec({ name: 'abc', owner: 'team-a', schema: badDefault });
    expect(bad.ok ? [] : bad.problems.map((p) => [p.rule, p.message])).toEqual([['invalid-avro', expect.stringMatching(/in field "a": expected an array/)]]);
  });

  it('reports YAML syntax errors and missing files', async () => {
    expect(parseSpecText('name: [unclosed', 'x.yaml')).toMatchObject({ ok: false, problems: [{ file: 'x.yaml', rule: 'syntax' }] });
    const r = await loadSpecFile(path.join(specsDir, 'nope.yaml'));
    expect(r.ok ? [] : r.problems.map((p) => p.rule)).toEqual(['file-missing']);
  });

  it('refuses schema paths outside spec files', async () => {
    const r = await validateSpec({ name: 'abc', owner: 'team-a', schema: '/etc/passwd' });
    expect(r.ok ? [] : r.problems.map((p) => p.rule)).toEqual(['schema-path-not-allowed']);
  });
});
