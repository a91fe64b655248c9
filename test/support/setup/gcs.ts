/**
 * The GCS emulator for the `system` project's global setup: one in-memory
 * instance per run, in the setup process, on a free loopback port. Tests
 * reach it at `inject('gcsUrl')` (as the Storage client's `apiEndpoint`) and
 * inject faults over HTTP with emulators/gcs/admin-client.ts.
 */
import { startGcsEmulator } from '../../../emulators/gcs/index.ts';

export async function startTestGcs(): Promise<{ url: string; stop(): Promise<void> }> {
  const emulator = await startGcsEmulator({ port: 0 });
  return { url: emulator.url, stop: () => emulator.close() };
}
