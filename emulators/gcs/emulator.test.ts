/** Unit tests of the emulator's pure parts: listing, multipart parsing, preconditions, faults, ranges, config. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AppError } from '../../lib/errors.ts';
import { loadConfig } from './config.ts';
import { FaultInjector, validateFaultRule } from './faults.ts';
import { parseRange } from './http-util.ts';
import { compareNames, listPage } from './listing.ts';
import { boundaryOf, MultipartParser, type MultipartEvent } from './multipart.ts';
import { checkPreconditions, preconditionsFrom } from './preconditions.ts';

describe('listPage', () => {
  const names = ['a', 'b/1', 'b/2', 'b/c/3', 'c', 'd/1', 'd/2'].sort(compareNames);

  it('groups by delimiter into prefixes', () => {
    expect(listPage(names, { delimiter: '/' })).toEqual({ names: ['a', 'c'], prefixes: ['b/', 'd/'] });
    expect(listPage(names, { prefix: 'b/', delimiter: '/' })).toEqual({ names: ['b/1', 'b/2'], prefixes: ['b/c/'] });
  });

  it('honours startOffset and endOffset', () => {
    expect(listPage(names, { startOffset: 'b/2', endOffset: 'd/1' }).names).toEqual(['b/2', 'b/c/3', 'c']);
  });

  it('pages through everything exactly once, for any page size', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[ab/]{1,5}$/), { maxLength: 40 }),
        fc.integer({ min: 1, max: 7 }),
        fc.boolean(),
        (raw, max, delimited) => {
          const sorted = [...raw].sort(compareNames);
          const q = delimited ? { delimiter: '/' } : {};
          const whole = listPage(sorted, q);
          const names: string[] = [];
          const prefixes: string[] = [];
          let token: string | undefined;
          for (let i = 0; i < 100; i++) {
            const page = listPage(sorted, { ...q, maxResults: max, ...(token === undefined ? {} : { pageToken: token }) });
            expect(page.names.length + page.prefixes.length).toBeLessThanOrEqual(max);
            names.push(...page.names);
            prefixes.push(...page.prefixes);
            token = page.nextPageToken;
            if (token === undefined) break;
          }
          expect(names).toEqual(whole.names);
          expect(prefixes).toEqual(whole.prefixes);
        },
      ),
    );
  });

  it('orders by UTF-8 bytes', () => {
    expect(['\u{1F600}', '\uFFFD', 'z'].sort(compareNames)).toEqual(['z', '\uFFFD', '\u{1F600}']);
  });
});

describe('MultipartParser', () => {
  const body = (b: string): Buffer =>
    Buffer.from(`--${b}\r\nContent-Type: application/json\r\n\r\n{"name":"x"}\r\n--${b}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--world\r\n--${b}--`);

  it('parses the two parts however the body is split', () => {
    const whole = body('B0undary');
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: whole.length }), { maxLength: 6 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const parser = new MultipartParser('B0undary');
        const events: MultipartEvent[] = [];
        let last = 0;
        for (const p of [...points, whole.length]) {
          events.push(...parser.push(whole.subarray(last, p)));
          last = p;
        }
        const parts: { headers: Record<string, string>; data: string }[] = [];
        for (const e of events) {
          if (e.type === 'part') parts.push({ headers: e.headers, data: '' });
          else if (e.type === 'data') parts[parts.length - 1]!.data += e.chunk.toString();
        }
        expect(parser.finished).toBe(true);
        expect(parts).toEqual([
          { headers: { 'content-type': 'application/json' }, data: '{"name":"x"}' },
          { headers: { 'content-type': 'text/plain' }, data: 'hello\r\n--world' },
        ]);
      }),
    );
  });

  it('reads the boundary from the content type', () => {
    expect(boundaryOf('multipart/related; boundary=abc-123')).toBe('abc-123');
    expect(boundaryOf('multipart/related; boundary="q b"')).toBe('q b');
    expect(boundaryOf('application/json')).toBeUndefined();
  });
});

describe('preconditions', () => {
  const live = { generation: '5', metageneration: 2 };
  const q = (s: string) => preconditionsFrom(new URLSearchParams(s));

  it('ifGenerationMatch=0 means absent', () => {
    expect(checkPreconditions(q('ifGenerationMatch=0'), undefined)).toBeUndefined();
    expect(checkPreconditions(q('ifGenerationMatch=0'), live)?.status).toBe(412);
  });

  it('checks generation and metageneration', () => {
    expect(checkPreconditions(q('ifGenerationMatch=5&ifMetagenerationMatch=2'), live)).toBeUndefined();
    expect(checkPreconditions(q('ifGenerationNotMatch=5'), live)?.details).toEqual({ reason: 'conditionNotMet' });
    expect(checkPreconditions(q('ifMetagenerationMatch=1'), live)?.status).toBe(412);
    expect(checkPreconditions(q('ifMetagenerationMatch=1'), undefined)?.status).toBe(412);
    expect(checkPreconditions(q('ifMetagenerationNotMatch=2'), live)?.status).toBe(412);
  });

  it('rejects non-numeric values', () => {
    expect(() => q('ifGenerationMatch=abc')).toThrow(AppError);
  });
});

describe('FaultInjector', () => {
  it('fails the next N matching requests, then drops the rule', () => {
    const f = new FaultInjector();
    f.add({ methods: ['POST'], path: '^/upload/', times: 2, status: 503 });
    expect(f.decide('GET', '/upload/x')).toBeUndefined();
    expect(f.decide('POST', '/storage/v1/b')).toBeUndefined();
    expect(f.decide('POST', '/upload/storage/v1/b/x/o')?.status).toBe(503);
    expect(f.decide('POST', '/upload/storage/v1/b/x/o')?.status).toBe(503);
    expect(f.decide('POST', '/upload/storage/v1/b/x/o')).toBeUndefined();
    expect(f.list()).toEqual([]);
  });

  it('fires with the given probability', () => {
    let i = 0;
    const rolls = [0.01, 0.5, 0.04, 0.99];
    const f = new FaultInjector(() => rolls[i++ % rolls.length]!);
    const id = f.add({ probability: 0.05, status: 503 });
    const fired = Array.from({ length: 4 }, () => f.decide('PUT', '/x')?.status);
    expect(fired).toEqual([503, undefined, 503, undefined]);
    expect(f.list()[0]).toMatchObject({ id, fired: 2 });
  });

  it('adds latency of every firing rule and takes the first failure', () => {
    const f = new FaultInjector();
    f.add({ latencyMs: 10 });
    f.add({ latencyMs: 5, cut: 'request', cutAfterBytes: 100 });
    f.add({ status: 429 });
    expect(f.decide('PUT', '/x')).toMatchObject({ latencyMs: 15, cut: { side: 'request', afterBytes: 100 } });
  });

  it('validates rules', () => {
    expect(() => validateFaultRule({ status: 503, bogus: 1 })).toThrow(/bogus/);
    expect(() => validateFaultRule({ path: '(' })).toThrow(/regular expression/);
    expect(() => validateFaultRule({ methods: ['GET'] })).toThrow(/status, latencyMs or cut/);
    expect(validateFaultRule({ cutAfterBytes: 10 })).toEqual({ cutAfterBytes: 10, cut: 'response' });
  });
});

describe('parseRange', () => {
  it('parses GCS range forms', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=50-500', 100)).toEqual({ start: 50, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange(undefined, 100)).toBeUndefined();
    expect(parseRange('items=1-2', 100)).toBeUndefined();
  });
});

describe('loadConfig', () => {
  it('reads flags, falling back to the environment', () => {
    expect(loadConfig(['--port', '9000', '--dir=/tmp/x'], {})).toEqual({ port: 9000, dir: '/tmp/x', host: '127.0.0.1' });
    expect(loadConfig([], { GCS_EMULATOR_PORT: '0' })).toMatchObject({ port: 0, dir: undefined });
  });

  it('names the bad setting', () => {
    expect(() => loadConfig(['--port', 'eighty'], {})).toThrow(/GCS_EMULATOR_PORT/);
    expect(() => loadConfig(['--colour', 'red'], {})).toThrow(/--colour/);
  });
});
