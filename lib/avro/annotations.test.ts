import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { extendCatalogue } from '../semantic-types.ts';
import { formatPath, inspectAnnotations, personalFields, semanticFields, subjectField, valuesAt } from './annotations.ts';

const profile = JSON.parse(readFileSync(new URL('../../test/fixtures/user_profile_updated.avsc', import.meta.url), 'utf8')) as unknown;

describe('semanticFields', () => {
  it('lists annotated leaves through nested records, arrays, maps and unions', () => {
    const fields = semanticFields(profile);
    expect(fields.map((f) => [f.path, f.semanticType, f.personal, f.category, f.nullable, f.repeated])).toEqual([
      ['userId', 'userId', false, 'identity', false, false],
      ['occurredAt', 'timestamp', false, 'technical', false, false],
      ['email', 'email', true, 'contact', true, false],
      ['fullName', 'fullName', true, 'contact', false, false],
      ['address.street', 'postalAddress', true, 'contact', false, false],
      ['address.city', 'postalAddress', true, 'contact', false, false],
      ['address.country', 'country', false, 'coarse', false, false],
      ['devices[].deviceId', 'deviceId', true, 'device', false, true],
      ['phoneNumbers[]', 'phoneNumber', true, 'contact', false, true],
      ['lastLogins{}', 'ipAddress', true, 'network', true, true],
    ]);
    expect(fields.find((f) => f.path === 'devices[].deviceId')?.steps).toEqual([{ kind: 'field', name: 'devices' }, { kind: 'items' }, { kind: 'field', name: 'deviceId' }]);
    expect(fields.every((f) => formatPath(f.steps) === f.path)).toBe(true);
    expect(fields.find((f) => f.subject)?.path).toBe('userId');
  });

  it('personalFields keeps only what the ETL encrypts', () => {
    expect(personalFields(profile).map((f) => f.path)).toEqual(['email', 'fullName', 'address.street', 'address.city', 'devices[].deviceId', 'phoneNumbers[]', 'lastLogins{}']);
  });

  it('finds the subject', () => {
    expect(subjectField(profile)).toBe('userId');
    expect(subjectField({ type: 'record', name: 'R', fields: [{ name: 'x', type: 'string' }] })).toBeUndefined();
    const nested = { type: 'record', name: 'R', fields: [{ name: 'who', type: { type: 'record', name: 'W', fields: [{ name: 'id', type: ['null', 'string'], semanticType: 'userId' }] } }] };
    expect(subjectField(nested)).toBe('who.id');
  });

  it('annotations on a type object (array items) and named references', () => {
    const s = {
      type: 'record',
      name: 'R',
      fields: [
        { name: 'uid', type: 'long', semanticType: 'userId' },
        { name: 'emails', type: { type: 'array', items: { type: 'string', semanticType: 'email' } } },
        { name: 'home', type: { type: 'record', name: 'Place', fields: [{ name: 'latLon', type: 'string', semanticType: 'location' }] } },
        { name: 'work', type: ['null', 'Place'] },
      ],
    };
    expect(semanticFields(s).map((f) => f.path)).toEqual(['uid', 'emails[]', 'home.latLon', 'work.latLon']);
  });

  it('reports every broken rule, with paths', () => {
    const s = {
      type: 'record',
      name: 'R',
      fields: [
        { name: 'a', type: 'string', semanticType: 'userId' },
        { name: 'b', type: 'string', semanticType: 'userId' },
        { name: 'c', type: 'string', semanticType: 'shoeSize' },
        { name: 'd', type: { type: 'record', name: 'D', fields: [] }, semanticType: 'email' },
      ],
    };
    const { problems } = inspectAnnotations(s);
    expect(problems.map((p) => [p.path, p.rule])).toEqual([
      ['c', 'unknown-semantic-type'],
      ['d', 'annotation-on-record'],
      ['a, b', 'multiple-subjects'],
    ]);
    expect(() => semanticFields(s)).toThrow(/shoeSize/);
  });

  it('personal fields need a subject; a subject must be single-valued', () => {
    const noSubject = { type: 'record', name: 'R', fields: [{ name: 'email', type: 'string', semanticType: 'email' }] };
    expect(inspectAnnotations(noSubject).problems.map((p) => p.rule)).toEqual(['missing-subject']);
    const repeated = { type: 'record', name: 'R', fields: [{ name: 'ids', type: { type: 'array', items: 'string' }, semanticType: 'userId' }] };
    expect(inspectAnnotations(repeated).problems.map((p) => p.rule)).toEqual(['repeated-subject']);
  });

  it('uses an extended catalogue', () => {
    const catalogue = extendCatalogue({ shoeSize: { personal: true, category: 'body', accessTier: 'restricted', retentionDays: 30, description: 'Shoe size' } });
    const s = { type: 'record', name: 'R', fields: [{ name: 'u', type: 'string', semanticType: 'userId' }, { name: 's', type: 'int', semanticType: 'shoeSize' }] };
    expect(semanticFields(s, catalogue).map((f) => [f.path, f.category])).toEqual([['u', 'identity'], ['s', 'body']]);
  });

  it('valuesAt fans out arrays and maps and skips nulls', () => {
    const record = { devices: [{ deviceId: 'd1' }, { deviceId: 'd2' }], lastLogins: { web: '1.2.3.4', app: null }, address: null };
    const at = (p: string) => valuesAt(record, semanticFields(profile).find((f) => f.path === p)!.steps);
    expect(at('devices[].deviceId')).toEqual(['d1', 'd2']);
    expect(at('lastLogins{}')).toEqual(['1.2.3.4']);
    expect(at('address.city')).toEqual([]);
  });
});
