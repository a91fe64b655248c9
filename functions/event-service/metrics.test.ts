import { describe, expect, it } from 'vitest';
import { ServiceMetrics } from './metrics.ts';

describe('ServiceMetrics', () => {
  it('renders per-type counters in the Prometheus text format', () => {
    const m = new ServiceMetrics();
    m.accepted('page_view', 100);
    m.accepted('page_view', 50);
    m.rejected('page_view', 'EVENT_INVALID');
    m.rejected('_unknown', 'UNKNOWN_EVENT_TYPE');
    m.publishFailed('sign_up');
    m.response(200);
    m.inFlightBytesGauge(() => [{ eventType: 'page_view', value: 7 }]);
    const text = m.render();
    expect(text).toContain('# TYPE event_service_events_accepted_total counter');
    expect(text).toContain('event_service_events_accepted_total{event_type="page_view"} 2');
    expect(text).toContain('event_service_accepted_bytes_total{event_type="page_view"} 150');
    expect(text).toContain('event_service_events_rejected_total{event_type="page_view",code="EVENT_INVALID"} 1');
    expect(text).toContain('event_service_events_rejected_total{event_type="_unknown",code="UNKNOWN_EVENT_TYPE"} 1');
    expect(text).toContain('event_service_publish_failures_total{event_type="sign_up"} 1');
    expect(text).toContain('event_service_in_flight_bytes{event_type="page_view"} 7');
    expect(text).toContain('event_service_http_responses_total{status="200"} 1');
    for (const line of text.trim().split('\n')) expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+\{[^}]*\} \d+)$/);
  });
});
