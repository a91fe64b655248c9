variable "project_id" {
  description = "Project of this environment's platform (the one stage 1 applied)."
  type        = string
}

variable "region" {
  description = "Primary region (where stage 1 created the ETL cluster)."
  type        = string
}

variable "platform_state" {
  description = "Where stage 1 (terraform/examples/complete) keeps its state: the GCS bucket and prefix of its backend."
  type = object({
    bucket = string
    prefix = string
  })
}

variable "worker_overrides" {
  description = "Ops-side sizing of worker groups by event type name, merged over the exported settings (the export never sets `worker`)."
  type = map(object({
    min_replicas                   = optional(number, 1)
    max_replicas                   = optional(number, 10)
    target_undelivered_per_replica = optional(number, 5000)
    cpu                            = optional(string, "500m")
    memory                         = optional(string, "1Gi")
    heap_mb                        = optional(number, 160)
  }))
  default = {}
}
