variable "project_id" {
  description = "Project that holds the event type's resources (the platform's project)."
  type        = string
}

variable "event_type" {
  description = <<-EOT
    One event type, as `composer export terraform` writes it (one entry of `event_types` in
    event_types.auto.tfvars.json). Settings come from the registry record; the delivery
    settings (SLO, ack deadline, dead-letter attempts, retention of messages, retry backoff)
    are the composer's defaults for the type's priority, so the API path and this module
    configure the same resources the same way; `alerts` is composer/monitoring.ts's
    definition of the type's alerts, rendered here as alert policies.
  EOT
  type = object({
    name                          = string
    owner                         = string
    description                   = optional(string, "")
    priority                      = string
    storage                       = list(string)
    partitioning                  = string
    retention_days                = number
    compatibility                 = optional(string, "BACKWARD_TRANSITIVE")
    shards_per_period             = optional(number, 1)
    schema_version                = number
    schema_fingerprint            = string
    schema_definition             = string
    deprecated                    = optional(bool, false)
    slo_hours                     = number
    ack_deadline_seconds          = optional(number, 60)
    message_retention_days        = optional(number, 7)
    dead_letter_max_attempts      = optional(number, 100)
    retry_minimum_backoff_seconds = optional(number, 10)
    retry_maximum_backoff_seconds = optional(number, 600)
    alerts = map(object({
      metric             = string
      promql_metric      = string
      resource           = string
      threshold          = number
      duration_seconds   = number
      severity           = string
      working_hours_only = bool
      description        = string
    }))
  })

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{2,62}$", var.event_type.name))
    error_message = "event_type.name must match ^[a-z][a-z0-9_]{2,62}$ (lib/names.ts eventTypeNamePattern)."
  }
  validation {
    condition     = contains(["high", "normal", "low"], var.event_type.priority)
    error_message = "event_type.priority must be high, normal or low."
  }
  validation {
    condition     = length(var.event_type.storage) > 0 && alltrue([for s in var.event_type.storage : contains(["gcs", "bigquery"], s)])
    error_message = "event_type.storage must list gcs, bigquery or both."
  }
  validation {
    condition     = contains(["hourly", "daily"], var.event_type.partitioning)
    error_message = "event_type.partitioning must be hourly or daily."
  }
  validation {
    condition     = var.event_type.retention_days >= 1 && floor(var.event_type.retention_days) == var.event_type.retention_days
    error_message = "event_type.retention_days must be a whole number of days, at least 1."
  }
  validation {
    condition     = var.event_type.shards_per_period >= 1 && var.event_type.shards_per_period <= 256 && floor(var.event_type.shards_per_period) == var.event_type.shards_per_period
    error_message = "event_type.shards_per_period must be a whole number from 1 to 256 (lib/registry/types.ts MAX_SHARDS_PER_PERIOD)."
  }
  validation {
    condition     = var.event_type.slo_hours > 0
    error_message = "event_type.slo_hours must be positive."
  }
  validation {
    # Pub/Sub limits: ack deadline 10-600 s, 5-100 delivery attempts, retention 10 min-31 days.
    condition = (
      var.event_type.ack_deadline_seconds >= 10 && var.event_type.ack_deadline_seconds <= 600 &&
      var.event_type.dead_letter_max_attempts >= 5 && var.event_type.dead_letter_max_attempts <= 100 &&
      var.event_type.message_retention_days >= 1 && var.event_type.message_retention_days <= 31 &&
      var.event_type.retry_minimum_backoff_seconds >= 0 && var.event_type.retry_maximum_backoff_seconds <= 600 &&
      var.event_type.retry_minimum_backoff_seconds <= var.event_type.retry_maximum_backoff_seconds
    )
    error_message = "Pub/Sub limits: ack_deadline_seconds 10-600, dead_letter_max_attempts 5-100, message_retention_days 1-31, retry backoff 0-600 s with minimum <= maximum."
  }
  validation {
    condition     = alltrue([for a in values(var.event_type.alerts) : contains(["CRITICAL", "ERROR", "WARNING"], a.severity)])
    error_message = "event_type.alerts[*].severity must be CRITICAL, ERROR or WARNING."
  }
}

variable "platform" {
  description = "What the platform module provides to every event type: pass `module.platform.event_type_platform` (plus the Kubernetes namespace of the ETL worker groups)."
  type = object({
    project_number                 = string
    labels                         = map(string)
    dataset_id                     = string
    data_bucket                    = string
    etl_service_account_email      = string
    etl_service_account_name       = string
    event_service_account_email    = string
    composer_service_account_email = string
    status_service_account_email   = string
    kubernetes_namespace           = string
    provisioning                   = string
    notification_channels = object({
      high   = list(string)
      normal = list(string)
      low    = list(string)
    })
    working_hours = object({
      start_hour       = number
      end_hour         = number
      utc_offset_hours = number
    })
  })
}

variable "deletion_protection" {
  description = "Protect the BigQuery table from `terraform destroy` (it holds delivered data). Set false only to remove a type together with its table."
  type        = bool
  default     = true
}
