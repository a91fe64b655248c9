import { describe, expect, it } from 'vitest';
import { canonicalForm, fingerprintFromSingleObjectBytes, fingerprintToSingleObjectBytes, rabin64, schemaFingerprint } from './fingerprint.ts';

describe('schema fingerprints', () => {
  it('matches the Avro specification for primitive schemas', () => {
    // Values from the Avro Java implementation's SchemaNormalization tests (CRC-64-AVRO of canonical forms).
    expect(rabin64(Buffer.from('"int"')).toString(16)).toBe('7275d51a3f395c8f');
    expect(rabin64(Buffer.from('"string"')).toString(16)).toBe('8f014872634503c7');
    expect(rabin64(Buffer.from('"null"')).toString(16)).toBe('63dd24e7cc258f8a');
  });

  it('ignores annotations and docs, so only the shape names the schema', () => {
    const plain = { type: 'record', name: 'E', fields: [{ name: 'email', type: 'string' }] };
    const annotated = { type: 'record', name: 'E', doc: 'x', fields: [{ name: 'email', type: 'string', semanticType: 'email' }] };
    expect(canonicalForm(annotated)).toBe('{"name":"E","type":"record","fields":[{"name":"email","type":"string"}]}');
    expect(schemaFingerprint(annotated)).toBe(schemaFingerprint(plain));
    expect(schemaFingerprint(plain)).toMatch(/^[0-9a-f]{16}$/);
  });

  it('round-trips through the single-object encoding header bytes', () => {
    const fp = schemaFingerprint({ type: 'record', name: 'E', fields: [{ name: 'a', type: 'long' }] });
    expect(fingerprintFromSingleObjectBytes(fingerprintToSingleObjectBytes(fp))).toBe(fp);
  });
});
