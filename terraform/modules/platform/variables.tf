variable "project_id" {
  description = "Project that hosts the platform (one project per environment is recommended: Pub/Sub admin is granted project-wide)."
  type        = string
}

variable "region" {
  description = "Primary region: event service, the ETL's GKE cluster and padlock's primary deployment group."
  type        = string
}

variable "provisioning" {
  description = <<-EOT
    Who owns the per-type Pub/Sub resources (topic, schema, subscriptions, dead letters):
    `terraform` (the event-type module creates them; the composer only validates, records and
    exports, and gets read-only Pub/Sub access) or `composer` (the composer creates them through
    the API and gets Pub/Sub editor; the event-type module creates none of them). Must equal the
    composer's COMPOSER_PROVISIONING.
  EOT
  type        = string
  default     = "terraform"

  validation {
    condition     = contains(["terraform", "composer"], var.provisioning)
    error_message = "provisioning must be terraform or composer."
  }
}

variable "labels" {
  description = "Labels added to every resource (e.g. environment, cost centre). The module adds team = owner = platform."
  type        = map(string)
  default     = {}
}

variable "storage" {
  description = <<-EOT
    Cloud Storage. `data_retention_days_by_prefix` maps each GCS-stored event type's prefix
    (`<name>/`) to its retention: one lifecycle rule per type (a bucket holds at most 100
    rules). Staging objects (parts not yet closed into a partition) and the audit counts
    under `audit/` must outlive the longest SLO (72 h), hence at least 4 days.
  EOT
  type = object({
    location                      = optional(string, "EU")
    data_bucket_name              = optional(string)
    staging_bucket_name           = optional(string)
    staging_object_max_age_days   = optional(number, 7)
    audit_object_max_age_days     = optional(number, 7)
    data_soft_delete_days         = optional(number, 7)
    data_retention_days_by_prefix = optional(map(number), {})
    force_destroy                 = optional(bool, false)
  })
  default = {}

  validation {
    # Soft delete keeps 7 to 90 days (0 turns it off).
    condition     = var.storage.data_soft_delete_days == 0 || (var.storage.data_soft_delete_days >= 7 && var.storage.data_soft_delete_days <= 90)
    error_message = "data_soft_delete_days must be 0 or 7-90."
  }
  validation {
    condition     = var.storage.staging_object_max_age_days >= 4 && var.storage.audit_object_max_age_days >= 4
    error_message = "Staging and audit objects must live at least 4 days: longer than the low-priority SLO (72 h)."
  }
  validation {
    condition     = length(var.storage.data_retention_days_by_prefix) <= 99
    error_message = "A bucket holds at most 100 lifecycle rules: split event types across data buckets beyond 99 GCS-stored types."
  }
  validation {
    condition     = alltrue([for p in keys(var.storage.data_retention_days_by_prefix) : endswith(p, "/")])
    error_message = "Prefixes must end with '/', so that 'page_view/' does not also match 'page_view_v2/'."
  }
}

variable "bigquery" {
  description = "BigQuery dataset of the event tables (its location is also the ETL's load jobs' location)."
  type = object({
    location   = optional(string, "EU")
    dataset_id = optional(string, "events")
  })
  default = {}
}

variable "kms" {
  description = "Cloud KMS key ring and padlock's key-encryption key (rotated every `rotation_period_days`). `location` must be a multi-region (`europe`, `us`, `asia`, `global`) or dual-region (e.g. `eur4`), so the KEK outlives a region outage, as padlock's mirror group must."
  type = object({
    location             = optional(string, "europe")
    key_ring_name        = optional(string, "event-platform")
    key_name             = optional(string, "padlock-kek")
    rotation_period_days = optional(number, 90)
  })
  default = {}

  validation {
    # Regions are <area>-<name><digit> (europe-west1); multi- and dual-regions have no dash.
    condition     = !can(regex("-", var.kms.location))
    error_message = "kms.location must be a multi-region or dual-region location (e.g. europe, us, eur4), not a region."
  }
}

variable "event_service" {
  description = "The ingestion service on Cloud Run. `invoker_members` are the producers allowed to call it (IAM members, e.g. serviceAccount:producer@p.iam.gserviceaccount.com)."
  type = object({
    image           = string
    min_instances   = optional(number, 1)
    max_instances   = optional(number, 100)
    concurrency     = optional(number, 80)
    cpu             = optional(string, "1")
    memory          = optional(string, "1Gi")
    invoker_members = optional(list(string), [])
  })
}

variable "padlock" {
  description = <<-EOT
    The key service: two independent deployment groups (`padlock` in `region`, `padlock-mirror`
    in `mirror_region`), each sized for ALL traffic, so either can take the whole load when
    the other is down. `service_secrets_secret_id` is an existing Secret Manager secret holding
    padlock's calling services, PADLOCK_SERVICES: a JSON array of {name, secretSha256, contexts?,
    admin?} (created by ops, so its value never enters Terraform state).
  EOT
  type = object({
    image                            = string
    mirror_region                    = string
    peak_requests_per_second         = number
    requests_per_second_per_instance = optional(number, 200)
    headroom                         = optional(number, 1.5)
    min_instances                    = optional(number, 1)
    concurrency                      = optional(number, 80)
    cpu                              = optional(string, "1")
    memory                           = optional(string, "512Mi")
    service_secrets_secret_id        = string
  })

  validation {
    condition     = var.padlock.peak_requests_per_second > 0 && var.padlock.requests_per_second_per_instance > 0 && var.padlock.headroom >= 1
    error_message = "padlock.peak_requests_per_second and requests_per_second_per_instance must be positive, headroom at least 1."
  }
}

variable "status" {
  description = "The partition status service on Cloud Run (functions/status): one instance, its CPU always allocated. `viewer_members` may open its pages (IAM members granted roles/run.invoker, e.g. group:events-team@acme.example); nobody else can."
  type = object({
    image          = string
    cpu            = optional(string, "1")
    memory         = optional(string, "1Gi")
    viewer_members = optional(list(string), [])
  })
}

variable "key_store" {
  description = "Padlock's key store: a Bigtable instance with one cluster per padlock region and the `keychains` table (families `k` and `t`, one version each: lib/names.ts keychainFamilies)."
  type = object({
    instance_name = optional(string, "padlock-keys")
    table_name    = optional(string, "keychains")
    primary_zone  = optional(string)
    mirror_zone   = optional(string)
    storage_type  = optional(string, "SSD")
    min_nodes     = optional(number, 1)
    max_nodes     = optional(number, 5)
    cpu_target    = optional(number, 60)
  })
  default = {}
}

variable "registry_store" {
  description = "The composer's registry: a Firestore database in Native mode. Keep `(default)`: the composer and the ETL open the project's default database (they read no database id)."
  type = object({
    database_id = optional(string, "(default)")
    location_id = optional(string, "eur3")
  })
  default = {}
}

variable "etl" {
  description = "The ETL worker groups: a GKE Autopilot cluster, the namespace the worker groups run in, and the ETL image."
  type = object({
    image        = string
    namespace    = optional(string, "etl")
    cluster_name = optional(string, "etl")
    network      = optional(string, "default")
    subnetwork   = optional(string)
  })
}

variable "alerting" {
  description = "Notification channels (ids) per priority, and the working hours outside which low-priority alerts stay silent."
  type = object({
    notification_channels = optional(object({
      high   = optional(list(string), [])
      normal = optional(list(string), [])
      low    = optional(list(string), [])
    }), {})
    working_hours = optional(object({
      start_hour       = optional(number, 9)
      end_hour         = optional(number, 18)
      utc_offset_hours = optional(number, 0)
    }), {})
  })
  default = {}

  validation {
    condition = (
      var.alerting.working_hours.start_hour >= 0 && var.alerting.working_hours.start_hour < var.alerting.working_hours.end_hour &&
      var.alerting.working_hours.end_hour <= 24 && abs(var.alerting.working_hours.utc_offset_hours) <= 14
    )
    error_message = "working_hours: 0 <= start_hour < end_hour <= 24, and |utc_offset_hours| <= 14."
  }
}

variable "deletion_protection" {
  description = "Protect stateful resources (Cloud Run services, GKE cluster, Bigtable, Firestore) from `terraform destroy`."
  type        = bool
  default     = true
}
