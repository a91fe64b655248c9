/** Listening and graceful shutdown of a node:http server. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.ts';

/** Listens on `host` (127.0.0.1 by default) and `port` (0: a free one); resolves the port and the URL to give clients. */
export async function listen(server: Server, host = '127.0.0.1', port = 0): Promise<{ port: number; url: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return { port: bound, url: `http://${urlHost}:${bound}` };
}

/** How often a closing server closes the keep-alive connections that went idle since. */
const IDLE_SWEEP_MS = 50;

/**
 * Graceful shutdown: stops accepting connections, lets the requests in flight
 * finish (each keep-alive connection is closed once idle), and after `graceMs`
 * cuts whatever is still open. Resolves once every connection is closed.
 * `graceMs` 0 cuts at once (emulators: a test stopping one wants it gone).
 */
export function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      server.closeAllConnections();
      resolve();
      return;
    }
    const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
    const cut = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearInterval(sweep);
      clearTimeout(cut);
      resolve();
    });
    server.closeIdleConnections();
    if (graceMs <= 0) server.closeAllConnections();
  });
}

/**
 * A service's process stops gracefully on SIGTERM (what Cloud Run and Kubernetes send)
 * or SIGINT: `close` once, then exit 0, or 1 if closing failed.
 */
export function closeOnSignals(close: () => Promise<void>, logger: Logger): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('shutdown failed', { error: err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
