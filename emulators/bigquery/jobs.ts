/**
 * Jobs: jobs.insert with a caller-chosen id (a second insert of the id is a
 * 409 `duplicate`, as in BigQuery), then PENDING → RUNNING → DONE in the
 * background, each state visible to jobs.get. A job's failure is its
 * `status.errorResult`, never an HTTP error of jobs.get.
 */
import type { Logger } from '../../lib/logger.ts';
import { Catalog, checkProject, jobKey } from './catalog.ts';
import { errors, jobError } from './errors.ts';
import type { GcsSource } from './gcs-source.ts';
import { parseLoadConfig, runLoad, type LoadConfig } from './load-job.ts';
import type { JobRecord } from './model.ts';
import { parseQuery, runQuery, type QueryPlan } from './query.ts';

const JOB_ID = /^[A-Za-z0-9_-]{1,1024}$/;

export interface JobRunnerOptions {
  /** Time each job spends in PENDING and at least in RUNNING (0: as fast as it can). */
  jobStepMs: number;
  /** Largest total input of one load job. */
  maxLoadBytes: number;
}

export class JobRunner {
  private closed = false;
  private readonly running = new Set<Promise<void>>();
  /** Wakes every paused job when the emulator closes. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly catalog: Catalog,
    private readonly gcs: GcsSource,
    private readonly options: JobRunnerOptions,
    private readonly logger: Logger,
  ) {}

  /** Re-runs jobs a previous process left unfinished (unless their commit is already in the table). */
  resume(): void {
    for (const job of this.catalog.jobs.values()) {
      if (job.state === 'DONE') continue;
      const load = job.configuration.load;
      if (load !== undefined) {
        try {
          const cfg = parseLoadConfig(job.projectId, load);
          const t = this.catalog.findTable(cfg.destination.projectId, cfg.destination.datasetId, cfg.destination.tableId);
          if (t?.committedJobs.includes(job.jobId) === true) {
            this.finish(job, undefined);
            continue;
          }
        } catch {
          // fall through: the run reports it
        }
      }
      job.state = 'PENDING';
      this.schedule(job);
    }
  }

  /** jobs.insert: validates, records the job as PENDING and starts it (unless the caller runs it, as jobs.query does). */
  insert(projectId: string, body: Record<string, unknown>, start = true): JobRecord {
    checkProject(projectId);
    const ref = (body.jobReference ?? {}) as { jobId?: unknown; location?: unknown; projectId?: unknown };
    const jobId = ref.jobId === undefined ? `job_${crypto.randomUUID().replace(/-/g, '_')}` : ref.jobId;
    if (typeof jobId !== 'string' || !JOB_ID.test(jobId)) {
      throw errors.invalid(`Invalid job ID "${String(jobId).slice(0, 1024)}". Job IDs must be alphanumeric (plus underscores and dashes) and must be at most 1024 characters long.`);
    }
    const location = typeof ref.location === 'string' && ref.location !== '' ? ref.location : 'US';
    if (this.catalog.jobs.has(jobKey(projectId, jobId))) throw errors.duplicate(`Job ${projectId}:${location}.${jobId}`);
    const configuration = body.configuration;
    if (typeof configuration !== 'object' || configuration === null || Array.isArray(configuration)) throw errors.required('Required parameter is missing: configuration');
    const cfg = configuration as Record<string, unknown>;
    if (cfg.load !== undefined) parseLoadConfig(projectId, cfg.load);
    else if (cfg.query !== undefined) parseQuery(projectId, cfg.query);
    else throw errors.invalid('The emulator runs load and query jobs only (configuration.load or configuration.query).');
    const job: JobRecord = { projectId, jobId, location, configuration: cfg, state: 'PENDING', creationTime: this.catalog.nowMs() };
    this.catalog.jobs.set(jobKey(projectId, jobId), job);
    void this.catalog.saveJob(job);
    if (start) this.schedule(job);
    return job;
  }

  get(projectId: string, jobId: string): JobRecord {
    const job = this.catalog.jobs.get(jobKey(projectId, jobId));
    if (job === undefined) throw errors.notFound(`Job ${projectId}:US.${jobId}`);
    return job;
  }

  list(projectId: string): JobRecord[] {
    return [...this.catalog.jobs.values()].filter((j) => j.projectId === projectId).sort((a, b) => b.creationTime - a.creationTime);
  }

  /** jobs.cancel: a job not yet DONE ends with a `stopped` error (its commit, if it got there, stays). */
  cancel(projectId: string, jobId: string): JobRecord {
    const job = this.get(projectId, jobId);
    if (job.state !== 'DONE') job.cancelled = true;
    return job;
  }

  /** Runs a query job to the end (jobs.query waits for it). */
  async runQueryNow(job: JobRecord, plan: QueryPlan): Promise<void> {
    job.state = 'RUNNING';
    job.startTime = this.catalog.nowMs();
    try {
      job.result = runQuery(this.catalog, plan);
      job.statistics = { query: { totalBytesProcessed: '0', cacheHit: false, statementType: 'SELECT' }, totalBytesProcessed: '0' };
      this.finish(job, undefined);
    } catch (err) {
      this.finish(job, err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopping.abort();
    await Promise.allSettled([...this.running]);
  }

  private schedule(job: JobRecord): void {
    const run = this.run(job).catch((err: unknown) => {
      this.logger.error('job runner failed', { jobId: job.jobId, err: err instanceof Error ? err : String(err) });
    });
    this.running.add(run);
    void run.then(() => this.running.delete(run));
  }

  private async run(job: JobRecord): Promise<void> {
    await this.pause(this.options.jobStepMs);
    if (this.closed) return;
    if (job.cancelled === true) return this.finish(job, errors.stopped(job.jobId));
    job.state = 'RUNNING';
    job.startTime = this.catalog.nowMs();
    void this.catalog.saveJob(job);
    const minEnd = Date.now() + this.options.jobStepMs;
    let failure: unknown;
    try {
      const load = job.configuration.load;
      if (load !== undefined) {
        const cfg: LoadConfig = parseLoadConfig(job.projectId, load);
        const stats = await runLoad(this.catalog, this.gcs, cfg, job.jobId, { maxBytes: this.options.maxLoadBytes }, () => job.cancelled === true);
        job.statistics = { load: stats };
      } else {
        const plan = parseQuery(job.projectId, job.configuration.query);
        job.result = runQuery(this.catalog, plan);
        job.statistics = { query: { totalBytesProcessed: '0', cacheHit: false, statementType: 'SELECT' }, totalBytesProcessed: '0' };
      }
    } catch (err) {
      failure = err;
    }
    await this.pause(minEnd - Date.now());
    if (this.closed) return;
    this.finish(job, failure);
  }

  private finish(job: JobRecord, failure: unknown): void {
    job.state = 'DONE';
    job.endTime = this.catalog.nowMs();
    job.startTime ??= job.endTime;
    if (failure !== undefined) {
      const e = jobError(failure);
      if (e.reason === 'internalError') this.logger.error('job failed inside the emulator', { jobId: job.jobId, err: failure instanceof Error ? failure : String(failure) });
      job.errorResult = e;
      job.errors = [e];
    }
    void this.catalog.saveJob(job);
  }

  private pause(ms: number): Promise<void> {
    if (ms <= 0 || this.closed) return new Promise((r) => setImmediate(r));
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const signal = this.stopping.signal;
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done);
    });
  }
}
