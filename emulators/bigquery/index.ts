/** The BigQuery emulator: start it in process, or run `main.ts`. */
export { startBigQueryEmulator, ADMIN_PREFIX, type BigQueryEmulator, type BigQueryEmulatorOptions } from './server.ts';
export type { FaultRule, ActiveFaultRule, FaultController } from '../gcs/faults.ts';
