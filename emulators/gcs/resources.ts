/** The JSON API's representations of buckets and objects. */
import type { BucketRecord, ObjectRecord } from './model.ts';
import { protectionResource } from './protection.ts';

export function bucketResource(b: BucketRecord, baseUrl: string): Record<string, unknown> {
  return {
    kind: 'storage#bucket',
    selfLink: `${baseUrl}/storage/v1/b/${encodeURIComponent(b.name)}`,
    id: b.name,
    name: b.name,
    projectNumber: '0',
    metageneration: String(b.metageneration),
    location: b.location,
    locationType: 'multi-region',
    storageClass: b.storageClass,
    etag: 'CAE=',
    timeCreated: b.timeCreated,
    updated: b.updated,
    iamConfiguration: { uniformBucketLevelAccess: { enabled: true }, publicAccessPrevention: 'inherited' },
    ...(b.labels === undefined ? {} : { labels: b.labels }),
    ...(b.objectRetention === true ? { objectRetention: { mode: 'Enabled' } } : {}),
  };
}

export function objectResource(o: ObjectRecord, baseUrl: string): Record<string, unknown> {
  const path = `b/${encodeURIComponent(o.bucket)}/o/${encodeURIComponent(o.name)}`;
  return {
    kind: 'storage#object',
    id: `${o.bucket}/${o.name}/${o.generation}`,
    selfLink: `${baseUrl}/storage/v1/${path}`,
    mediaLink: `${baseUrl}/download/storage/v1/${path}?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket: o.bucket,
    generation: o.generation,
    metageneration: String(o.metageneration),
    contentType: o.contentType ?? 'application/octet-stream',
    storageClass: 'STANDARD',
    size: String(o.size),
    md5Hash: o.md5Hash,
    crc32c: o.crc32c,
    etag: etagOf(o),
    timeCreated: o.timeCreated,
    updated: o.updated,
    timeStorageClassUpdated: o.timeCreated,
    timeFinalized: o.timeCreated,
    ...(o.contentEncoding === undefined ? {} : { contentEncoding: o.contentEncoding }),
    ...(o.contentDisposition === undefined ? {} : { contentDisposition: o.contentDisposition }),
    ...(o.contentLanguage === undefined ? {} : { contentLanguage: o.contentLanguage }),
    ...(o.cacheControl === undefined ? {} : { cacheControl: o.cacheControl }),
    ...(o.metadata === undefined ? {} : { metadata: o.metadata }),
    ...(o.componentCount === undefined ? {} : { componentCount: o.componentCount }),
    ...protectionResource(o),
  };
}

/** GCS-like etag: changes with the generation and the metageneration. */
export function etagOf(o: ObjectRecord): string {
  return Buffer.from(`${o.generation}/${o.metageneration}`).toString('base64');
}
