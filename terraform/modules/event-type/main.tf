locals {
  name = var.event_type.name

  # Resource names. These MUST equal `resourceNames` in lib/names.ts (the keys are its
  # keys in snake_case); test/terraform.test.ts evaluates them against it.
  names = {
    topic                    = "events-${local.name}"
    topic_schema             = "events-${local.name}-schema"
    etl_subscription         = "events-${local.name}-etl"
    dead_letter_topic        = "events-${local.name}-dead-letter"
    dead_letter_subscription = "events-${local.name}-dead-letter-sub"
    big_query_table          = local.name
    storage_prefix           = "${local.name}/"
    worker_group             = "etl-${replace(local.name, "_", "-")}"
  }

  # GCP label values: lowercase letters, digits, `_` and `-`; Kubernetes (worker-group module)
  # also wants alphanumeric at both ends, so both modules trim the same way.
  owner_label = replace(substr(replace(lower(var.event_type.owner), "/[^a-z0-9_.-]/", "-"), 0, 63), "/^[^a-z0-9]+|[^a-z0-9]+$/", "")
  labels = merge(var.platform.labels, {
    event_type = local.name
    team       = local.owner_label
    owner      = local.owner_label
    priority   = var.event_type.priority
    lifecycle  = var.event_type.deprecated ? "deprecated" : "active"
  })

  to_bigquery = contains(var.event_type.storage, "bigquery")

  # The BigQuery table's columns before its first load: the envelope of the delivered files
  # (lib/partitions.ts deliveredFileSchema) exactly as the ETL's loader maps it
  # (etl/bigquery-schema.ts tableSchemaOf; test/terraform.test.ts compares them). The
  # loader owns the columns from then on: it adds `payload` and each writer version's
  # columns (tables.patch) before loading, so Terraform ignores later schema changes.
  receive_time_column = "receiveTime"
  envelope_columns = [
    { name = "eventId", type = "STRING", mode = "REQUIRED", description = "Producer-chosen (or assigned) event id; unique in its partition." },
    { name = local.receive_time_column, type = "TIMESTAMP", mode = "REQUIRED", description = "When the event service accepted the event (UTC); picks the partition." },
  ]
  to_gcs = contains(var.event_type.storage, "gcs")

  pubsub_service_agent = "serviceAccount:service-${var.platform.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # One owner per resource (composer/provisioning.ts `pubsubOwner`): with provisioning =
  # "composer" the composer creates the Pub/Sub resources below and this module none of them.
  owns_pubsub = var.platform.provisioning == "terraform"
  pubsub_ids = {
    topic             = "projects/${var.project_id}/topics/${local.names.topic}"
    dead_letter_topic = "projects/${var.project_id}/topics/${local.names.dead_letter_topic}"
  }
}

# --- Pub/Sub: schema, topic, ETL subscription, dead letters -----------------------------

resource "google_pubsub_schema" "events" {
  count = local.owns_pubsub ? 1 : 0

  project = var.project_id
  name    = local.names.topic_schema
  type    = "AVRO"
  # The Parsing Canonical Form of the current schema (annotations dropped): what the
  # event service encodes with. Changing it adds a schema revision; the topic accepts
  # every revision, so messages published just before a schema change still validate.
  definition = var.event_type.schema_definition
}

resource "google_pubsub_topic" "events" {
  count = local.owns_pubsub ? 1 : 0

  project = var.project_id
  name    = local.names.topic
  labels  = local.labels

  schema_settings {
    schema   = google_pubsub_schema.events[0].id
    encoding = "BINARY"
  }
}

resource "google_pubsub_topic" "dead_letter" {
  count = local.owns_pubsub ? 1 : 0

  project = var.project_id
  name    = local.names.dead_letter_topic
  labels  = local.labels
}

resource "google_pubsub_subscription" "etl" {
  count = local.owns_pubsub ? 1 : 0

  project = var.project_id
  name    = local.names.etl_subscription
  topic   = google_pubsub_topic.events[0].id
  labels  = local.labels

  # The ETL acknowledges a message only once its record is durable in staging.
  ack_deadline_seconds       = var.event_type.ack_deadline_seconds
  message_retention_duration = "${var.event_type.message_retention_days * 86400}s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = "" # never expire, however long the type stays idle
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[0].id
    max_delivery_attempts = var.event_type.dead_letter_max_attempts
  }

  retry_policy {
    minimum_backoff = "${var.event_type.retry_minimum_backoff_seconds}s"
    maximum_backoff = "${var.event_type.retry_maximum_backoff_seconds}s"
  }
}

resource "google_pubsub_subscription" "dead_letter" {
  count = local.owns_pubsub ? 1 : 0

  project = var.project_id
  name    = local.names.dead_letter_subscription
  topic   = google_pubsub_topic.dead_letter[0].id
  labels  = local.labels

  # Dead letters are kept for inspection and replay, as long as Pub/Sub allows.
  message_retention_duration = "${31 * 86400}s"
  retain_acked_messages      = true
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

# The IAM bindings below name the Pub/Sub resources (whoever owns them); with provisioning =
# "composer" they must exist (composer apply) before this module is applied.

# Pub/Sub's service agent forwards undeliverable messages: it must publish to the
# dead-letter topic and acknowledge them on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = local.names.dead_letter_topic
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent

  depends_on = [google_pubsub_topic.dead_letter]
}

resource "google_pubsub_subscription_iam_member" "dead_letter_forwarder" {
  project      = var.project_id
  subscription = local.names.etl_subscription
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent

  depends_on = [google_pubsub_subscription.etl]
}

# The ETL publishes what it cannot process to the dead-letter topic itself
# (etl/pipeline.ts), then acks it.
resource "google_pubsub_topic_iam_member" "etl_dead_letter_publisher" {
  project = var.project_id
  topic   = local.names.dead_letter_topic
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.platform.etl_service_account_email}"

  depends_on = [google_pubsub_topic.dead_letter]
}

# The event service may publish to the type's topic while the type is active; a
# deprecated type keeps draining but accepts nothing new.
resource "google_pubsub_topic_iam_member" "event_service_publisher" {
  count = var.event_type.deprecated ? 0 : 1

  project = var.project_id
  topic   = local.names.topic
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.platform.event_service_account_email}"

  depends_on = [google_pubsub_topic.events]
}

# `composer replay <type> --dead-letters` (composer/replay/dead-letters.ts) pulls the type's
# dead letters, re-publishes each to its topic and then acknowledges it. In composer mode the
# composer's project-wide roles/pubsub.editor (platform module) already allows both.
resource "google_pubsub_subscription_iam_member" "composer_replay_subscriber" {
  count = local.owns_pubsub ? 1 : 0

  project      = var.project_id
  subscription = local.names.dead_letter_subscription
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.platform.composer_service_account_email}"

  depends_on = [google_pubsub_subscription.dead_letter]
}

resource "google_pubsub_topic_iam_member" "composer_replay_publisher" {
  count = local.owns_pubsub ? 1 : 0

  project = var.project_id
  topic   = local.names.topic
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.platform.composer_service_account_email}"

  depends_on = [google_pubsub_topic.events]
}

# The partition status service counts the type's dead letters (functions/status/dead-letters.ts):
# it pulls them without acknowledging and hands their leases back at once (ack deadline 0).
# In both provisioning modes: nothing else lets it consume the subscription.
resource "google_pubsub_subscription_iam_member" "status_dead_letter_reader" {
  project      = var.project_id
  subscription = local.names.dead_letter_subscription
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.platform.status_service_account_email}"

  depends_on = [google_pubsub_subscription.dead_letter]
}

resource "google_pubsub_subscription_iam_member" "etl_subscriber" {
  project      = var.project_id
  subscription = local.names.etl_subscription
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.platform.etl_service_account_email}"

  depends_on = [google_pubsub_subscription.etl]
}

# --- BigQuery ------------------------------------------------------------------------

resource "google_bigquery_table" "events" {
  count = local.to_bigquery ? 1 : 0

  project             = var.project_id
  dataset_id          = var.platform.dataset_id
  table_id            = local.names.big_query_table
  description         = var.event_type.description
  labels              = local.labels
  deletion_protection = var.deletion_protection
  # Every query names the partitions it reads: a full scan of years of events is a mistake.
  require_partition_filter = true

  time_partitioning {
    type          = var.event_type.partitioning == "hourly" ? "HOUR" : "DAY"
    field         = local.receive_time_column
    expiration_ms = var.event_type.retention_days * 86400000
  }

  # BigQuery partitions on a column the table has, so the envelope exists up front; the
  # payload columns follow the delivered schema and are the loader's (see local.envelope_columns).
  schema = jsonencode(local.envelope_columns)

  lifecycle {
    ignore_changes = [schema]

    precondition {
      # BigQuery allows 10,000 partitions per table: at most 416 days of hourly partitions.
      condition     = var.event_type.partitioning != "hourly" || var.event_type.retention_days * 24 <= 10000
      error_message = "Hourly partitioning keeps at most 416 days in BigQuery (10,000 partitions); use daily partitioning or a shorter retention."
    }
  }
}

# The worker group's Kubernetes service account (terraform/modules/worker-group, named
# local.names.worker_group in the platform's namespace) acts as the ETL service account.
resource "google_service_account_iam_member" "worker_identity" {
  service_account_id = var.platform.etl_service_account_name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.platform.kubernetes_namespace}/${local.names.worker_group}]"
}

# --- Alerts -----------------------------------------------------------------------------
# One definition per alert: composer/monitoring.ts `monitoringFor` (what the composer
# records), exported as `event_type.alerts`; this module only renders it. PromQL
# conditions, so a low-priority type's alerts can be limited to working hours with PromQL
# time functions (Cloud Monitoring alert policies have no schedule).

locals {
  # PromQL hour() and day_of_week() are UTC; shift by the configured offset (no DST).
  local_time    = "vector(time() + ${var.platform.working_hours.utc_offset_hours * 3600})"
  working_hours = <<-EOT
    and on() (hour(${local.local_time}) >= ${var.platform.working_hours.start_hour} < ${var.platform.working_hours.end_hour})
    and on() (day_of_week(${local.local_time}) >= 1 <= 5)
  EOT

  # The metric's selector: Pub/Sub metrics by subscription; the ETL's Prometheus gauges
  # (lib/metrics.ts, scraped by Managed Service for Prometheus) by type, the worst worker's
  # value; the ETL's log-based counters by type, over the last hour.
  alert_queries = {
    for kind, a in var.event_type.alerts : kind => (
      startswith(a.metric, "pubsub.googleapis.com/")
      ? "max(${a.promql_metric}{monitored_resource=\"pubsub_subscription\",subscription_id=\"${a.resource}\"}) > ${a.threshold}"
      : startswith(a.metric, "prometheus.googleapis.com/")
      ? "max(${a.promql_metric}{event_type=\"${a.resource}\"}) > ${a.threshold}"
      : "sum(increase(${a.promql_metric}{event_type=\"${a.resource}\"}[1h])) > ${a.threshold}"
    )
  }

  notification_channels = var.platform.notification_channels[var.event_type.priority]
}

resource "google_monitoring_alert_policy" "alert" {
  for_each = var.event_type.alerts

  project               = var.project_id
  display_name          = "${local.name}: ${each.value.description}"
  combiner              = "OR"
  severity              = each.value.severity
  notification_channels = local.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "${each.value.metric} on ${each.value.resource}"
    condition_prometheus_query_language {
      query               = <<-EOT
        ${local.alert_queries[each.key]}
        ${each.value.working_hours_only ? local.working_hours : ""}
      EOT
      duration            = "${each.value.duration_seconds}s"
      evaluation_interval = "60s"
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      Event type `${local.name}` (owner: ${var.event_type.owner}, priority: ${var.event_type.priority}, SLO ${var.event_type.slo_hours} h): ${each.value.description}.
      Check the worker group `${local.names.worker_group}` (`kubectl -n etl get deploy,hpa ${local.names.worker_group}`) and its logs, the dead-letter subscription `${local.names.dead_letter_subscription}` (`gcloud pubsub subscriptions pull ${local.names.dead_letter_subscription} --limit 5`), and padlock.
      ${each.value.working_hours_only ? "Low priority: this alert only fires on weekdays between ${var.platform.working_hours.start_hour}:00 and ${var.platform.working_hours.end_hour}:00 (UTC${var.platform.working_hours.utc_offset_hours >= 0 ? "+" : ""}${var.platform.working_hours.utc_offset_hours})." : ""}
    EOT
  }
}
