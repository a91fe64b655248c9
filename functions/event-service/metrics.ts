/**
 * Per-type counters of the event service, exposed at `GET /metrics` in the
 * Prometheus text format. Events of types the registry does not know are
 * counted under `event_type="_unknown"` so producers cannot inflate label cardinality.
 */

export const UNKNOWN_TYPE_LABEL = '_unknown';

interface TypeCounters {
  accepted: number;
  acceptedBytes: number;
  publishFailures: number;
  rejected: Map<string, number>;
}

export class ServiceMetrics {
  private readonly types = new Map<string, TypeCounters>();
  private readonly responses = new Map<number, number>();
  /** Live gauges read at scrape time (e.g. in-flight bytes per type). */
  private readonly gauges: Array<() => Array<{ eventType: string; value: number }>> = [];

  private counters(eventType: string): TypeCounters {
    let c = this.types.get(eventType);
    if (c === undefined) {
      c = { accepted: 0, acceptedBytes: 0, publishFailures: 0, rejected: new Map() };
      this.types.set(eventType, c);
    }
    return c;
  }

  accepted(eventType: string, bytes: number): void {
    const c = this.counters(eventType);
    c.accepted++;
    c.acceptedBytes += bytes;
  }

  rejected(eventType: string, code: string): void {
    const c = this.counters(eventType);
    c.rejected.set(code, (c.rejected.get(code) ?? 0) + 1);
  }

  publishFailed(eventType: string): void {
    this.counters(eventType).publishFailures++;
  }

  response(status: number): void {
    this.responses.set(status, (this.responses.get(status) ?? 0) + 1);
  }

  inFlightBytesGauge(read: () => Array<{ eventType: string; value: number }>): void {
    this.gauges.push(read);
  }

  /** Snapshot for tests and the bench. */
  get(eventType: string): { accepted: number; acceptedBytes: number; publishFailures: number; rejected: Record<string, number> } {
    const c = this.types.get(eventType);
    return {
      accepted: c?.accepted ?? 0,
      acceptedBytes: c?.acceptedBytes ?? 0,
      publishFailures: c?.publishFailures ?? 0,
      rejected: Object.fromEntries(c?.rejected ?? []),
    };
  }

  /** The Prometheus text exposition (version 0.0.4). */
  render(): string {
    const lines: string[] = [];
    const family = (name: string, type: 'counter' | 'gauge', help: string, samples: string[]): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples);
    };
    const types = [...this.types.entries()].sort(([a], [b]) => a.localeCompare(b));
    family(
      'event_service_events_accepted_total',
      'counter',
      'Events accepted (publish confirmed by Pub/Sub).',
      types.map(([t, c]) => `event_service_events_accepted_total{event_type="${esc(t)}"} ${c.accepted}`),
    );
    family(
      'event_service_accepted_bytes_total',
      'counter',
      'Avro-encoded bytes of accepted events.',
      types.map(([t, c]) => `event_service_accepted_bytes_total{event_type="${esc(t)}"} ${c.acceptedBytes}`),
    );
    family(
      'event_service_events_rejected_total',
      'counter',
      'Events rejected or failed, by error code.',
      types.flatMap(([t, c]) =>
        [...c.rejected.entries()].map(([code, n]) => `event_service_events_rejected_total{event_type="${esc(t)}",code="${esc(code)}"} ${n}`),
      ),
    );
    family(
      'event_service_publish_failures_total',
      'counter',
      'Events whose publish to Pub/Sub failed.',
      types.map(([t, c]) => `event_service_publish_failures_total{event_type="${esc(t)}"} ${c.publishFailures}`),
    );
    family(
      'event_service_in_flight_bytes',
      'gauge',
      'Bytes waiting for Pub/Sub confirmation, per type.',
      this.gauges.flatMap((g) => g()).map((s) => `event_service_in_flight_bytes{event_type="${esc(s.eventType)}"} ${s.value}`),
    );
    family(
      'event_service_http_responses_total',
      'counter',
      'HTTP responses to POST /v1/events by status.',
      [...this.responses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `event_service_http_responses_total{status="${s}"} ${n}`),
    );
    return lines.join('\n') + '\n';
  }
}

function esc(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
