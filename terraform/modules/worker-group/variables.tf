variable "project_id" {
  description = "Project of the platform."
  type        = string
}

variable "event_type" {
  description = "One event type as `composer export terraform` writes it (the event-type module's `event_type`), plus `worker`: ops-only sizing of its worker group."
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
    worker = optional(object({
      min_replicas                   = optional(number, 1)
      max_replicas                   = optional(number, 10)
      target_undelivered_per_replica = optional(number, 5000)
      cpu                            = optional(string, "500m")
      memory                         = optional(string, "1Gi")
      heap_mb                        = optional(number, 160)
    }), {})
  })

  validation {
    condition     = var.event_type.worker.min_replicas >= 1 && var.event_type.worker.max_replicas >= var.event_type.worker.min_replicas
    error_message = "worker.min_replicas must be at least 1 (an idle worker still closes partitions) and at most max_replicas."
  }
  validation {
    condition     = var.event_type.worker.heap_mb >= 128
    error_message = "worker.heap_mb must be at least 128 (a draining worker's live heap is about 70 MB before any partition closes)."
  }
}

variable "platform" {
  description = "What the platform module provides to every worker group: its `worker_group_platform` output."
  type = object({
    labels                    = map(string)
    data_bucket               = string
    staging_bucket            = string
    etl_service_account_email = string
    padlock_urls              = list(string)
    etl_image                 = string
    kubernetes_namespace      = string
    bigquery_dataset          = string
    bigquery_location         = string
  })
}
