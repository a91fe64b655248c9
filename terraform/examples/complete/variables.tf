variable "project_id" {
  description = "Project of this environment's platform."
  type        = string
}

variable "region" {
  description = "Primary region (event service, ETL cluster, padlock)."
  type        = string
}

variable "environment" {
  description = "Environment name (prod, staging…), put in every resource's labels."
  type        = string
}

variable "images" {
  description = "Container images of the event service, padlock, the ETL and the partition status service (pin them by digest in production)."
  type = object({
    event_service = string
    padlock       = string
    etl           = string
    status        = string
  })
}

variable "padlock" {
  description = "Padlock: the mirror deployment group's region, the peak load EACH group must carry alone, and the Secret Manager secret of per-service secrets (created beforehand by ops)."
  type = object({
    mirror_region             = string
    peak_requests_per_second  = number
    service_secrets_secret_id = string
  })
}

variable "event_service_invokers" {
  description = "IAM members (producers) allowed to call the event service."
  type        = list(string)
  default     = []
}

variable "status_viewers" {
  description = "IAM members (operators) allowed to open the partition status page."
  type        = list(string)
  default     = []
}

variable "provisioning" {
  description = "Who owns the per-type Pub/Sub resources: `terraform` (this configuration; the composer runs with COMPOSER_PROVISIONING=terraform) or `composer`. See the platform module's README."
  type        = string
  default     = "terraform"
}

variable "alert_emails" {
  description = "Who gets each priority's alerts: one email notification channel is created per address (high pages on-call, normal and low go to a team queue)."
  type = object({
    high   = list(string)
    normal = list(string)
    low    = list(string)
  })
}

variable "location" {
  description = "Multi-region (or region) of the buckets and the BigQuery dataset, and the Firestore location of the registry."
  type = object({
    storage  = optional(string, "EU")
    bigquery = optional(string, "EU")
    registry = optional(string, "eur3")
  })
  default = {}
}

# Written by `composer export terraform --out <this dir>` (event_types.auto.tfvars.json).
# The object type is the event-type module's `event_type` input.
variable "event_types" {
  description = "Event types by name, as exported from the composer's registry (only active types, and deprecated ones still draining)."
  type = map(object({
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
  }))
  default = {}

  validation {
    condition     = alltrue([for k, v in var.event_types : k == v.name])
    error_message = "Each event_types key must equal its name."
  }
}
