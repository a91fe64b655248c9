/**
 * The semantic-type catalogue: what a schema annotation such as
 * `"semanticType": "email"` means for privacy. Shipped defaults below;
 * deployments extend or override them with `extendCatalogue`.
 */
export type AccessTier = 'public' | 'internal' | 'restricted' | 'confidential';

export interface SemanticType {
  /** Personal data about the subject: encrypted with the subject's key. */
  personal: boolean;
  /** Data category; each category has its own root key per user in padlock. */
  category: string;
  accessTier: AccessTier;
  /** How long data of this type may be kept, in days. */
  retentionDays: number;
  description: string;
}

export type SemanticCatalogue = Readonly<Record<string, SemanticType>>;

/** The data subject's id: personal by nature, but stored in clear so keys can be found. */
export const SUBJECT_SEMANTIC_TYPE = 'userId';

/**
 * A catalogue as an object without a prototype: annotations are looked up in it
 * by name (`catalogue[annotation]`), and a name such as `constructor` or
 * `toString` must find nothing rather than an inherited function.
 */
function catalogueOf(...parts: SemanticCatalogue[]): SemanticCatalogue {
  return Object.freeze(Object.assign(Object.create(null) as Record<string, SemanticType>, ...parts));
}

export const defaultCatalogue: SemanticCatalogue = catalogueOf({
  userId: { personal: false, category: 'identity', accessTier: 'internal', retentionDays: 730, description: 'The data subject (user) id; exactly one per schema with personal fields' },
  email: { personal: true, category: 'contact', accessTier: 'restricted', retentionDays: 365, description: 'E-mail address' },
  phoneNumber: { personal: true, category: 'contact', accessTier: 'restricted', retentionDays: 365, description: 'Phone number' },
  postalAddress: { personal: true, category: 'contact', accessTier: 'restricted', retentionDays: 365, description: 'Postal address' },
  fullName: { personal: true, category: 'contact', accessTier: 'restricted', retentionDays: 365, description: "A person's name" },
  ipAddress: { personal: true, category: 'network', accessTier: 'restricted', retentionDays: 90, description: 'IP address' },
  deviceId: { personal: true, category: 'device', accessTier: 'restricted', retentionDays: 180, description: 'Device or advertising identifier' },
  location: { personal: true, category: 'location', accessTier: 'confidential', retentionDays: 90, description: 'Precise location (coordinates, address of a visit)' },
  birthDate: { personal: true, category: 'demographics', accessTier: 'confidential', retentionDays: 365, description: 'Date of birth' },
  freeText: { personal: true, category: 'content', accessTier: 'restricted', retentionDays: 180, description: 'Free text a user typed; may hold anything' },
  adsProfile: { personal: true, category: 'ads', accessTier: 'restricted', retentionDays: 90, description: 'Advertising interests or segments' },
  country: { personal: false, category: 'coarse', accessTier: 'internal', retentionDays: 730, description: 'Country code' },
  timestamp: { personal: false, category: 'technical', accessTier: 'internal', retentionDays: 730, description: 'A point in time' },
  contentId: { personal: false, category: 'content-metadata', accessTier: 'internal', retentionDays: 730, description: 'Id of a track, page or other content item' },
});

/** Defaults plus `extra` (which may override a default). */
export function extendCatalogue(extra: SemanticCatalogue, base: SemanticCatalogue = defaultCatalogue): SemanticCatalogue {
  return catalogueOf(base, extra);
}

/** Data categories of the personal semantic types: the categories padlock keeps keys for. */
export function personalCategories(catalogue: SemanticCatalogue = defaultCatalogue): string[] {
  return [...new Set(Object.values(catalogue).filter((t) => t.personal).map((t) => t.category))].sort();
}
