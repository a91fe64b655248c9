/** The Cloud Storage emulator: start it in process, or run `main.ts`. */
export { startGcsEmulator, ADMIN_PREFIX, type GcsEmulator, type GcsEmulatorOptions } from './server.ts';
export type { FaultRule, ActiveFaultRule, FaultController } from './faults.ts';
