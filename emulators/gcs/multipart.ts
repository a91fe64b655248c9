/**
 * A streaming parser for `multipart/related` bodies (the JSON API's
 * multipart upload: a JSON metadata part, then the media part). Push chunks
 * as they arrive; it returns events, holding back only a delimiter's length,
 * so a large media part is never buffered whole.
 */
import { errors } from './gcs-errors.ts';

export type MultipartEvent =
  | { type: 'part'; headers: Record<string, string> }
  | { type: 'data'; chunk: Buffer }
  | { type: 'end' };

/** The boundary of a `multipart/related; boundary=…` content type, if any. */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const m = /^multipart\/related\s*;.*?\bboundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m === null ? undefined : (m[1] ?? m[2]);
}

type State = 'preamble' | 'afterBoundary' | 'headers' | 'body' | 'done';

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 64 * 1024;

export class MultipartParser {
  private buf: Buffer = Buffer.alloc(0);
  private state: State = 'preamble';
  private readonly first: Buffer;
  private readonly delimiter: Buffer;

  constructor(boundary: string) {
    this.first = Buffer.from(`--${boundary}`);
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
  }

  get finished(): boolean {
    return this.state === 'done';
  }

  /** Feeds a chunk; returns the events it completes. */
  push(chunk: Buffer): MultipartEvent[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: MultipartEvent[] = [];
    for (;;) {
      if (this.state === 'preamble') {
        const at = this.buf.indexOf(this.first);
        if (at === -1) {
          if (this.buf.length > MAX_HEADER_BYTES) throw errors.invalid('Multipart body has no boundary.');
          return out;
        }
        this.buf = this.buf.subarray(at + this.first.length);
        this.state = 'afterBoundary';
      } else if (this.state === 'afterBoundary') {
        if (this.buf.length < 2) return out;
        if (this.buf[0] === 0x2d && this.buf[1] === 0x2d) {
          this.state = 'done';
          this.buf = Buffer.alloc(0);
          out.push({ type: 'end' });
          return out;
        }
        const eol = this.buf.indexOf(CRLF);
        if (eol === -1) return out;
        this.buf = this.buf.subarray(eol + 2);
        this.state = 'headers';
      } else if (this.state === 'headers') {
        // A part with no headers starts with an empty line right away.
        if (this.buf.length >= 2 && this.buf[0] === 0x0d && this.buf[1] === 0x0a) {
          this.buf = this.buf.subarray(2);
          out.push({ type: 'part', headers: {} });
          this.state = 'body';
          continue;
        }
        const end = this.buf.indexOf(HEADER_END);
        if (end === -1) {
          if (this.buf.length > MAX_HEADER_BYTES) throw errors.invalid('Multipart part headers too large.');
          return out;
        }
        const headers: Record<string, string> = {};
        for (const line of this.buf.subarray(0, end).toString('latin1').split('\r\n')) {
          const colon = line.indexOf(':');
          if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        this.buf = this.buf.subarray(end + 4);
        out.push({ type: 'part', headers });
        this.state = 'body';
      } else if (this.state === 'body') {
        const at = this.buf.indexOf(this.delimiter);
        if (at === -1) {
          const keep = this.delimiter.length - 1;
          if (this.buf.length > keep) {
            out.push({ type: 'data', chunk: this.buf.subarray(0, this.buf.length - keep) });
            this.buf = this.buf.subarray(this.buf.length - keep);
          }
          return out;
        }
        if (at > 0) out.push({ type: 'data', chunk: this.buf.subarray(0, at) });
        this.buf = this.buf.subarray(at + this.delimiter.length);
        this.state = 'afterBoundary';
      } else {
        return out;
      }
    }
  }
}
