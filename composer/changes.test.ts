import { describe, expect, it } from 'vitest';
import { defaultCatalogue } from '../lib/semantic-types.ts';
import { planRecordChange } from './changes.ts';
import type { EventTypeSpec } from './spec.ts';

const now = new Date('2026-11-23T10:00:00Z');
const opts = { catalogue: defaultCatalogue, now };
const schema = (fields: unknown[]) => ({ type: 'record', name: 'Signup', fields: [{ name: 'userId', type: 'string', semanticType: 'userId' }, ...fields] });
const spec = (fields: unknown[], extra: Partial<EventTypeSpec> = {}): EventTypeSpec => ({
  name: 'signup',
  owner: 'growth',
  description: '',
  priority: 'normal',
  storage: ['gcs'],
  partitioning: 'hourly',
  retentionDays: 30,
  compatibility: 'BACKWARD_TRANSITIVE',
  schema: schema(fields),
  ...extra,
});
const email = { name: 'email', type: 'string', semanticType: 'email' };

describe('planRecordChange', () => {
  const created = planRecordChange(undefined, spec([email]), opts).next;
  const existing = { ...created, revision: 1 };

  it('creates a record with version 1 and its fingerprint', () => {
    expect(created.versions).toEqual([{ version: 1, fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/), schema: schema([email]), createdAt: now.toISOString() }]);
    expect(created.status).toBe('active');
  });

  it('re-applying the same spec changes nothing', () => {
    expect(planRecordChange(existing, spec([email]), opts).action).toBe('none');
  });

  it('a compatible schema change adds a version; a settings change is listed', () => {
    const c = planRecordChange(existing, spec([email, { name: 'plan', type: 'string', default: 'free' }], { priority: 'high' }), opts);
    expect(c.action).toBe('update');
    expect(c.newVersion).toBe(2);
    expect(c.next.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(c.details).toEqual(['priority: "normal" → "high"', expect.stringMatching(/^add schema version 2/)]);
  });

  it('an incompatible change is refused with the field and the reason', () => {
    expect(() => planRecordChange(existing, spec([email, { name: 'plan', type: 'string' }]), opts)).toThrow(/plan: field plan is in the reader but not in the writer, and has no default/);
  });

  it('making a personal field non-personal needs force; annotations-only edits keep the version', () => {
    const plain = { name: 'email', type: 'string' };
    expect(() => planRecordChange(existing, spec([plain]), opts)).toThrow(/personal annotation "email" removed/);
    const forced = planRecordChange(existing, spec([plain]), { ...opts, force: true });
    expect(forced.action).toBe('update');
    expect(forced.next.versions).toHaveLength(1);
    expect(forced.next.versions[0]?.schema).toEqual(schema([plain]));
  });

  it('a deprecated type cannot change', () => {
    expect(() => planRecordChange({ ...existing, status: 'deprecated' }, spec([email]), opts)).toThrow(/deprecated/);
  });
});
