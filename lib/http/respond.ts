/**
 * Answers: JSON bodies, and errors as `{code, message, details}` with the
 * status of their catalogue code (lib/errors.ts).
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { toAppError, type AppError } from '../errors.ts';

/**
 * After an answer with `Connection: close` to a request whose body was not
 * read to its end, how long the rest is still read and discarded before the
 * socket is destroyed: closing with unread data makes the kernel reset the
 * connection, and a client still sending would lose our answer with it.
 */
const LINGER_MS = 2_000;

/** `body` as JSON; `headers` may override the content type (`application/json`). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A JSON text known to be ASCII: its length is its byte count, and latin1 writes it as a plain copy (the hot path's answer). */
export function sendAsciiJson(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, ['content-type', 'application/json', 'content-length', String(text.length)]);
  res.end(text, 'latin1');
}

export function sendEmpty(res: ServerResponse, status: number, headers: OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { ...headers, 'content-length': 0 });
  res.end();
}

export interface ErrorAnswerOptions {
  /** `Retry-After` (seconds) of a 429 or 503. */
  retryAfterSeconds?: number;
  headers?: OutgoingHttpHeaders;
}

/**
 * Answers `err` (anything thrown; non-AppErrors become INTERNAL) from the error
 * catalogue and returns it. A request whose body was not read to its end gets
 * `Connection: close`, and the connection lingers (lingerOnClose) so the client
 * reads the answer. Once the headers are out, the connection is cut instead.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown, options: ErrorAnswerOptions = {}): AppError {
  const error = toAppError(err);
  if (res.headersSent) {
    res.destroy();
    return error;
  }
  const headers: OutgoingHttpHeaders = { ...options.headers };
  if (options.retryAfterSeconds !== undefined && (error.status === 429 || error.status === 503)) headers['retry-after'] = String(options.retryAfterSeconds);
  if (bodyPending(req)) {
    headers.connection = 'close';
    lingerOnClose(req.socket);
    req.resume();
  }
  sendJson(res, error.status, error.toJSON(), headers);
  return error;
}

/** Whether part of the request's body may still be unread (a request without a body is complete only after its handler starts). */
function bodyPending(req: IncomingMessage): boolean {
  if (req.complete) return false;
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/**
 * Node destroys a `Connection: close` socket as soon as the response is
 * written; with the client still sending its body, that resets the
 * connection and the client may never read the answer. Instead: half-close
 * (our FIN after the answer), keep reading and discarding, and destroy once
 * the client closes its side or after LINGER_MS.
 */
function lingerOnClose(socket: Socket): void {
  socket.destroySoon = function lingeringClose(this: Socket): void {
    this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}
