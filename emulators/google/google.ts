/**
 * Starters for the Google emulators shipped with the Cloud SDK: Pub/Sub,
 * Firestore and Bigtable. Each listens on 127.0.0.1 and returns its
 * `host:port` plus a `stop()` that kills the emulator process itself.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { AppError } from '../../lib/errors.ts';
import { freePort, httpAnswers, startWatchedProcess, tcpAnswers } from './process.ts';

export interface RunningEmulator {
  name: string;
  /** `127.0.0.1:port`, the form `*_EMULATOR_HOST` variables take. */
  host: string;
  pid: number;
  stop(): Promise<void>;
}

export interface EmulatorOptions {
  /** 0 or absent picks a free port. */
  port?: number;
  /** Folder for the emulator's data and log; a temporary one if absent. */
  dataDir?: string;
  /** Emulator output goes here (default: `<dataDir>/<name>.log` or /dev/null). */
  logFile?: string;
}

let sdkRootCache: string | undefined;

/** The Cloud SDK root, from CLOUDSDK_ROOT_DIR or `gcloud info`. */
export function sdkRoot(): string {
  if (sdkRootCache !== undefined) return sdkRootCache;
  const candidates = ['/usr/lib/google-cloud-sdk', '/usr/share/google-cloud-sdk'];
  let root = candidates.find((c) => existsSync(path.join(c, 'platform')));
  if (root === undefined) {
    try {
      root = execFileSync('gcloud', ['info', '--format=value(installation.sdk_root)'], { encoding: 'utf8' }).trim();
    } catch (cause) {
      throw new AppError('UNAVAILABLE', { message: 'Cloud SDK not found: install gcloud with the emulators', cause });
    }
  }
  sdkRootCache = root;
  return root;
}

function platformFile(...parts: string[]): string {
  const file = path.join(sdkRoot(), 'platform', ...parts);
  if (!existsSync(file)) {
    throw new AppError('UNAVAILABLE', { message: `Cloud SDK component missing: ${file}` });
  }
  return file;
}

function logFileFor(name: string, opts: EmulatorOptions): string {
  if (opts.logFile !== undefined) return opts.logFile;
  if (opts.dataDir === undefined) return '/dev/null';
  mkdirSync(opts.dataDir, { recursive: true });
  return path.join(opts.dataDir, `${name}.log`);
}

export async function startPubSubEmulator(opts: EmulatorOptions = {}): Promise<RunningEmulator> {
  const libDir = platformFile('pubsub-emulator', 'lib');
  const jar = readdirSync(libDir).find((f) => /^cloud-pubsub-emulator-.*-all\.jar$/.test(f));
  if (jar === undefined) throw new AppError('UNAVAILABLE', { message: `Pub/Sub emulator jar not found in ${libDir}` });
  const port = opts.port || (await freePort());
  // 4 GB: the test suite shares one emulator, and its chaos and instance-loss tests leave about a
  // million messages in it; at 1 GB its heap filled, it spun in garbage collection at 100% CPU, and
  // the tests after them timed out.
  const args = ['-Xmx4g', '-jar', path.join(libDir, jar), '--host=127.0.0.1', `--port=${port}`];
  if (opts.dataDir !== undefined) {
    mkdirSync(path.join(opts.dataDir, 'pubsub'), { recursive: true });
    args.push(`--dir=${path.join(opts.dataDir, 'pubsub')}`);
  }
  const proc = await startWatchedProcess({
    name: 'pubsub emulator',
    command: 'java',
    args,
    logFile: logFileFor('pubsub', opts),
    ready: () => httpAnswers(`http://127.0.0.1:${port}/`),
  });
  return { name: 'pubsub', host: `127.0.0.1:${port}`, ...proc };
}

export async function startFirestoreEmulator(opts: EmulatorOptions = {}): Promise<RunningEmulator> {
  const jar = platformFile('cloud-firestore-emulator', 'cloud-firestore-emulator.jar');
  const port = opts.port || (await freePort());
  const proc = await startWatchedProcess({
    name: 'firestore emulator',
    command: 'java',
    args: [
      '-Xmx1g',
      '-Duser.language=en',
      '-cp',
      jar,
      'com.google.cloud.datastore.emulator.firestore.CloudFirestore',
      'start',
      '--host=127.0.0.1',
      `--port=${port}`,
    ],
    logFile: logFileFor('firestore', opts),
    ready: () => httpAnswers(`http://127.0.0.1:${port}/`),
  });
  return { name: 'firestore', host: `127.0.0.1:${port}`, ...proc };
}

export async function startBigtableEmulator(opts: EmulatorOptions = {}): Promise<RunningEmulator> {
  const bin = platformFile('bigtable-emulator', 'cbtemulator');
  const port = opts.port || (await freePort());
  const proc = await startWatchedProcess({
    name: 'bigtable emulator',
    command: bin,
    args: ['-host', '127.0.0.1', '-port', String(port)],
    logFile: logFileFor('bigtable', opts),
    ready: () => tcpAnswers('127.0.0.1', port),
  });
  return { name: 'bigtable', host: `127.0.0.1:${port}`, ...proc };
}
