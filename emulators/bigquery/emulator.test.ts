/** Unit tests of the emulator's pure parts: value text, partitions, schema changes, the Avro mapping, files, SQL, config. */
import { readFileSync } from 'node:fs';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { avroType } from '../../lib/avro/long.ts';
import { deliveredFileSchema } from '../../lib/partitions.ts';
import { AppError } from '../../lib/errors.ts';
import { openAvroFile } from './avro-file.ts';
import { avroContainer } from '../../test/support/bigquery-avro-fixtures.ts';
import { mapAvroSchema } from './avro-mapping.ts';
import { loadConfig } from './config.ts';
import { parseGsUri } from './gcs-source.ts';
import { checkDecorator, partitionExpired, partitionOfCell, partitionOfMs } from './partitioning.ts';
import { parseQuery, parseTimestamp } from './query.ts';
import { toJsonRow } from './rows.ts';
import { evolveSchema, parseSchema, type TableField } from './schema.ts';
import { cellBytes, formatDate, formatDatetime, formatDecimal, formatTime, javaDouble } from './values.ts';

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? String(err.details?.reason) : `not an AppError: ${String(err)}`;
  }
  return undefined;
}

describe('values', () => {
  it("writes FLOAT as Java's Double.toString does", () => {
    expect([1, 0.5, -2.25, 1e7, 1e-3, 1e-4, 1.5e21, 0, -0, NaN, Infinity].map(javaDouble)).toEqual([
      '1.0',
      '0.5',
      '-2.25',
      '1.0E7',
      '0.001',
      '1.0E-4',
      '1.5E21',
      '0.0',
      '-0.0',
      'NaN',
      'Infinity',
    ]);
  });

  it('formats decimals, dates, times and datetimes, refusing what BigQuery cannot hold', () => {
    expect([formatDecimal(12345n, 2), formatDecimal(-1n, 2), formatDecimal(1200n, 2), formatDecimal(5n, 0)]).toEqual(['123.45', '-0.01', '12', '5']);
    expect([formatDate(0), formatDate(-719162), formatDate(2932896), formatDate(2932897), formatDate(-719163)]).toEqual(['1970-01-01', '0001-01-01', '9999-12-31', undefined, undefined]);
    expect([formatTime(0n), formatTime(3_723_000_001n), formatTime(86_400_000_000n)]).toEqual(['00:00:00', '01:02:03.000001', undefined]);
    expect(formatDatetime(-1n)).toBe('1969-12-31T23:59:59.999999');
  });

  it('sizes cells as BigQuery counts numBytes', () => {
    const rec: TableField = { name: 'r', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 's', type: 'STRING', mode: 'NULLABLE' }, { name: 'n', type: 'INTEGER', mode: 'NULLABLE' }] };
    expect(cellBytes(rec, [{ s: 'é', n: '1' }, { s: null, n: '2' }])).toBe(2 + 2 + 8 + 0 + 8);
    expect(cellBytes({ name: 'b', type: 'BYTES', mode: 'NULLABLE' }, 'AP8B')).toBe(5);
  });
});

describe('partitioning', () => {
  const hourly = { type: 'HOUR' as const, field: 'ts' };
  it('puts TIMESTAMP, DATE and DATETIME cells in their partitions, NULL in __NULL__', () => {
    const ts: TableField = { name: 'ts', type: 'TIMESTAMP', mode: 'NULLABLE' };
    expect(partitionOfCell(String(Date.UTC(2024, 0, 1, 12, 59) * 1000), ts, hourly)).toBe('2024010112');
    expect(partitionOfCell('-1', ts, { type: 'DAY' })).toBe('19691231');
    expect(partitionOfCell(null, ts, hourly)).toBe('__NULL__');
    expect(partitionOfCell('2024-02-03T04:05:06', { name: 'd', type: 'DATETIME', mode: 'NULLABLE' }, hourly)).toBe('2024020304');
    expect(partitionOfCell('2024-02-03', { name: 'd', type: 'DATE', mode: 'NULLABLE' }, { type: 'MONTH' })).toBe('202402');
    expect(partitionOfMs(Date.UTC(2024, 11, 31, 23), { type: 'YEAR' })).toBe('2024');
  });

  it('accepts decorators of the table granularity only', () => {
    expect(reasonOf(() => checkDecorator('p:d.t', '2024010112', hourly))).toBeUndefined();
    expect(reasonOf(() => checkDecorator('p:d.t', '20240101', hourly))).toBe('invalid');
    expect(reasonOf(() => checkDecorator('p:d.t', '2024023012', hourly))).toBe('invalid');
    expect(reasonOf(() => checkDecorator('p:d.t', '20240101', undefined))).toBe('invalid');
  });

  it('expires a partition at its end plus expirationMs', () => {
    const tp = { type: 'DAY' as const, expirationMs: String(6 * 3_600_000) };
    expect(partitionExpired('20240101', tp, Date.UTC(2024, 0, 2, 5, 59))).toBe(false);
    expect(partitionExpired('20240101', tp, Date.UTC(2024, 0, 2, 6))).toBe(true);
    expect(partitionExpired('__NULL__', tp, Date.UTC(2030, 0, 1))).toBe(false);
  });
});

describe('schema', () => {
  const base = parseSchema({ fields: [{ name: 'a', type: 'INT64', mode: 'REQUIRED' }, { name: 'r', type: 'STRUCT', fields: [{ name: 'x', type: 'BOOL' }] }] });
  it('stores standard type names under their legacy names', () => {
    expect(base).toEqual([
      { name: 'a', type: 'INTEGER', mode: 'REQUIRED' },
      { name: 'r', type: 'RECORD', mode: 'NULLABLE', fields: [{ name: 'x', type: 'BOOLEAN', mode: 'NULLABLE' }] },
    ]);
  });

  it('refuses bad names, duplicate names (case-insensitive), unknown types and empty RECORDs', () => {
    for (const fields of [[{ name: '1a', type: 'STRING' }], [{ name: 'a', type: 'STRING' }, { name: 'A', type: 'STRING' }], [{ name: 'a', type: 'TEXT' }], [{ name: 'a', type: 'RECORD', fields: [] }]]) {
      expect(reasonOf(() => parseSchema({ fields }))).toBe('invalid');
    }
  });

  it('allows additions in nested RECORDs and relaxation when asked, and nothing else', () => {
    const opts = { allowFieldAddition: true, allowFieldRelaxation: true, requireAll: true };
    const next = parseSchema({ fields: [{ name: 'a', type: 'INTEGER' }, { name: 'r', type: 'RECORD', fields: [{ name: 'x', type: 'BOOLEAN' }, { name: 'y', type: 'DATE' }] }] });
    expect(evolveSchema('p:d.t', base, next, opts)[1]!.fields!.map((f) => f.name)).toEqual(['x', 'y']);
    expect(reasonOf(() => evolveSchema('p:d.t', base, next, { ...opts, allowFieldRelaxation: false }))).toBe('invalid');
    expect(reasonOf(() => evolveSchema('p:d.t', base, next, { ...opts, allowFieldAddition: false }))).toBe('invalid');
  });
});

describe('Avro mapping', () => {
  it('refuses unions of several types, recursive records and arrays of arrays', () => {
    const rec = (type: unknown): unknown => ({ type: 'record', name: 'R', fields: [{ name: 'f', type }] });
    expect(reasonOf(() => mapAvroSchema(rec(['null', 'string', 'long']), true, 'gs://b/o'))).toBe('invalid');
    expect(reasonOf(() => mapAvroSchema({ type: 'record', name: 'N', fields: [{ name: 'next', type: ['null', 'N'] }] }, true, 'gs://b/o'))).toBe('invalid');
    expect(reasonOf(() => mapAvroSchema(rec({ type: 'array', items: { type: 'array', items: 'int' } }), true, 'gs://b/o'))).toBe('invalid');
  });

  it('maps wide decimals to BIGNUMERIC and two’s-complement bytes exactly', () => {
    const m = mapAvroSchema({ type: 'record', name: 'R', fields: [{ name: 'd', type: { type: 'bytes', logicalType: 'decimal', precision: 40, scale: 10 } }] }, false, 'gs://b/o');
    expect(m.fields).toEqual([{ name: 'd', type: 'BIGNUMERIC', mode: 'REQUIRED' }]);
    expect(m.toRow({ d: Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0]) })).toEqual({ d: '-236118324143.4822606848' }); // -2^71 / 10^10;
  });

  it('fails a row whose TIMESTAMP is outside BigQuery’s range, naming the field', () => {
    const m = mapAvroSchema({ type: 'record', name: 'R', fields: [{ name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros' } }] }, true, 'gs://b/o');
    expect(() => m.toRow({ ts: 2n ** 62n })).toThrow(/Invalid TIMESTAMP value for field ts/);
  });
});

describe('rows keyed by field names', () => {
  it('keep names such as constructor and toString as plain own data, and read a missing __proto__ as NULL', () => {
    const m = mapAvroSchema({ type: 'record', name: 'R', fields: [{ name: 'constructor', type: 'string' }, { name: 'toString', type: 'long' }] }, true, 'gs://b/o');
    const row = m.toRow({ constructor: 'p', toString: 7 });
    expect(Object.hasOwn(row, 'constructor') && Object.hasOwn(row, 'toString')).toBe(true);
    // Columns added later (no value in this row), named like Object.prototype's members.
    const fields: TableField[] = [...m.fields, { name: '__proto__', type: 'STRING', mode: 'NULLABLE' }, { name: 'hasOwnProperty', type: 'STRING', mode: 'REPEATED' }];
    expect(toJsonRow(fields, row, 'INT64')).toEqual({ f: [{ v: 'p' }, { v: '7' }, { v: null }, { v: [] }] });
  });
});

describe("the platform's delivered files", () => {
  it('load as BigQuery would map them (fixture payload inside the delivered envelope)', async () => {
    const payload = JSON.parse(readFileSync(new URL('../../test/fixtures/user_profile_updated.avsc', import.meta.url), 'utf8')) as Record<string, unknown>;
    const schema = deliveredFileSchema(payload as never) as object;
    const type = avroType(schema);
    const records = Array.from({ length: 20 }, () => {
      const r = type.random() as unknown as { receiveTime: number; payload: { occurredAt: number } };
      r.receiveTime = Date.UTC(2024, 0, 1, 12);
      r.payload.occurredAt = Date.UTC(2024, 0, 1, 11);
      return r;
    });
    const file = openAvroFile('gs://b/o', await avroContainer(schema, records));
    const mapping = mapAvroSchema(file.schema, true, 'gs://b/o');
    const modes = (fields: readonly TableField[]): string[] => fields.map((f) => `${f.name}:${f.type}:${f.mode}`);
    expect(modes(mapping.fields)).toEqual(['eventId:STRING:REQUIRED', 'receiveTime:TIMESTAMP:REQUIRED', 'payload:RECORD:REQUIRED']);
    expect(modes(mapping.fields[2]!.fields!)).toEqual([
      'userId:STRING:REQUIRED',
      'occurredAt:TIMESTAMP:REQUIRED',
      'email:STRING:NULLABLE',
      'fullName:STRING:REQUIRED',
      'address:RECORD:NULLABLE',
      'devices:RECORD:REPEATED',
      'phoneNumbers:STRING:REPEATED',
      'lastLogins:RECORD:REPEATED',
      'plan:STRING:REQUIRED',
    ]);
    let n = 0;
    file.forEachRecord((r) => {
      const row = mapping.toRow(r);
      expect(row.receiveTime).toBe(String(Date.UTC(2024, 0, 1, 12) * 1000));
      n++;
    });
    expect(n).toBe(20);
  });
});

describe('Avro files', () => {
  it('reads what avsc writes, and refuses a truncated or altered file with invalid', async () => {
    const schema = { type: 'record', name: 'R', fields: [{ name: 'n', type: 'long' }] };
    const bytes = await avroContainer(schema, [{ n: 1 }, { n: 2n ** 60n }], 'deflate');
    const seen: unknown[] = [];
    openAvroFile('gs://b/o', bytes).forEachRecord((r) => seen.push((r as { n: unknown }).n));
    expect(seen).toEqual([1, 2n ** 60n]);
    const truncated = bytes.subarray(0, bytes.length - 5);
    expect(reasonOf(() => openAvroFile('gs://b/o', truncated).forEachRecord(() => undefined))).toBe('invalid');
    const altered = Buffer.from(bytes);
    altered[altered.length - 1] = altered[altered.length - 1]! ^ 0xff; // the sync marker
    expect(reasonOf(() => openAvroFile('gs://b/o', altered).forEachRecord(() => undefined))).toBe('invalid');
    expect(reasonOf(() => openAvroFile('gs://b/o', Buffer.from('Obj')))).toBe('invalid');
  });

  it('refuses a block that inflates beyond 64 MiB (a deflate bomb) with invalid', () => {
    const header = Buffer.from(bytesOfHeader());
    const bomb = zlib.deflateRawSync(Buffer.alloc(65 * 1024 * 1024));
    const sync = header.subarray(header.length - 16);
    const file = Buffer.concat([header, zigzag(1), zigzag(bomb.length), bomb, sync]);
    expect(reasonOf(() => openAvroFile('gs://b/o', file).forEachRecord(() => undefined))).toBe('invalid');
    expect(() => openAvroFile('gs://b/o', file).forEachRecord(() => undefined)).toThrow(/inflates beyond 67108864 bytes/);
  });
});

/** A container header (magic, schema, deflate codec, sync marker) for a one-long-field record. */
function bytesOfHeader(): Uint8Array {
  const str = (t: string): Buffer => Buffer.concat([zigzag(Buffer.byteLength(t)), Buffer.from(t)]);
  return Buffer.concat([Buffer.from('Obj\x01', 'latin1'), zigzag(2), str('avro.schema'), str('{"type":"record","name":"R","fields":[{"name":"n","type":"long"}]}'), str('avro.codec'), str('deflate'), zigzag(0), Buffer.alloc(16, 7)]);
}

function zigzag(n: number): Buffer {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  const out: number[] = [];
  while (z >= 0x80) {
    out.push((z % 0x80) | 0x80);
    z = Math.floor(z / 0x80);
  }
  out.push(z);
  return Buffer.from(out);
}

describe('SQL subset', () => {
  it('parses COUNT(*) and SELECT * with conditions, parameters and BETWEEN', () => {
    const plan = parseQuery('p', {
      query: "SELECT COUNT(*) AS n FROM `p.d.t` WHERE ts BETWEEN TIMESTAMP '2024-01-01' AND @hi AND name != 'x'",
      queryParameters: [{ name: 'hi', parameterType: { type: 'TIMESTAMP' }, parameterValue: { value: '2024-01-02 00:00:00' } }],
    });
    expect(plan).toMatchObject({ projectId: 'p', datasetId: 'd', tableId: 't', select: { count: true, alias: 'n' } });
    expect(plan.where.map((c) => c.op)).toEqual(['>=', '<=', '!=']);
  });

  it('refuses what it does not implement with invalidQuery', () => {
    for (const query of ['SELECT id FROM d.t', 'SELECT * FROM d.t WHERE a = 1 OR b = 2', 'SELECT * FROM d.t ORDER BY a', 'DELETE FROM d.t WHERE true', 'SELECT * FROM t']) {
      expect(reasonOf(() => parseQuery('p', { query })), query).toBe('invalidQuery');
    }
  });

  it('reads timestamps with zones and fractions', () => {
    expect(parseTimestamp('2024-01-01 00:00:00.5+01:00')).toBe(BigInt(Date.UTC(2023, 11, 31, 23)) * 1000n + 500_000n);
    expect(parseTimestamp('2024-02-30')).toBeUndefined();
  });
});

describe('config and URIs', () => {
  it('needs a GCS endpoint and names bad settings', () => {
    expect(loadConfig(['--port', '0', '--gcs-endpoint', 'http://127.0.0.1:4443'], {})).toEqual({ port: 0, gcsEndpoint: 'http://127.0.0.1:4443', dir: undefined, host: '127.0.0.1' });
    expect(() => loadConfig([], {})).toThrow(/BIGQUERY_EMULATOR_GCS_ENDPOINT/);
    expect(() => loadConfig(['--port', '70000', '--gcs-endpoint', 'http://x'], {})).toThrow(/BIGQUERY_EMULATOR_PORT/);
  });

  it('takes one wildcard in an object name', () => {
    expect(parseGsUri('gs://bucket/a/b*.avro')).toEqual({ bucket: 'bucket', name: 'a/b*.avro' });
    expect(reasonOf(() => parseGsUri('gs://bucket/a*/b*'))).toBe('invalid');
    expect(reasonOf(() => parseGsUri('s3://bucket/a'))).toBe('invalid');
  });
});
