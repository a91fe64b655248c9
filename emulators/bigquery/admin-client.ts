/**
 * The BigQuery emulator serves the same admin endpoint as the GCS emulator
 * (emulators/gcs/emulator-http.ts), so tests use the same client:
 *
 *   await injectFault(url, { methods: ['POST'], path: '/jobs$', times: 2, status: 503 });
 *   await clearFaults(url);
 */
export { clearFaults, injectFault, listFaults, removeFault, type ActiveFaultRule, type FaultRule } from '../gcs/admin-client.ts';
