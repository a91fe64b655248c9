/**
 * The ETL's metrics endpoint: `GET /metrics` in Prometheus's text format on
 * its own port (ETL_METRICS_PORT), apart from any data path. Anything else
 * is 404; a failing collection is 500 with no detail.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { METRICS_PATH } from '../lib/metrics.ts';
import type { Logger } from '../lib/logger.ts';
import type { EtlTelemetry } from './metrics-prometheus.ts';

export interface MetricsServer {
  /** `http://host:port/metrics`. */
  url: string;
  close(): Promise<void>;
}

/** Serves `telemetry` on `host:port` (port 0: a free one). */
export async function startMetricsServer(telemetry: EtlTelemetry, opts: { port: number; host?: string; logger?: Logger }): Promise<MetricsServer> {
  const host = opts.host ?? '0.0.0.0';
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== METRICS_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    telemetry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': telemetry.contentType }).end(body),
      (err: unknown) => {
        opts.logger?.warn('metrics collection failed', { error: err as Error });
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  });
  // Scrapers hold connections open; do not let them keep the process alive or delay close.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shown}:${port}${METRICS_PATH}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
