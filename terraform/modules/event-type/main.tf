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

  # GCP label values: lowercase letters, digits, `_` and `-`, at most 63 characters.
  owner_label = substr(replace(lower(var.event_type.owner), "/[^a-z0-9_-]/", "-"), 0, 63)
  labels = merge(var.platform.labels, {
    event_type = local.name
    team       = local.owner_label
    owner      = local.owner_label
    priority   = var.event_type.priority
    lifecycle  = var.event_type.deprecated ? "deprecated" : "active"
  })

  to_bigquery = contains(var.event_type.storage, "bigquery")
  to_gcs      = contains(var.event_type.storage, "gcs")

  pubsub_service_agent = "serviceAccount:service-${var.platform.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# --- Pub/Sub: schema, topic, ETL subscription, dead letters -----------------------------

resource "google_pubsub_schema" "events" {
  project = var.project_id
  name    = local.names.topic_schema
  type    = "AVRO"
  # The Parsing Canonical Form of the current schema (annotations dropped): what the
  # event service encodes with. Changing it adds a schema revision; the topic accepts
  # every revision, so messages published just before a schema change still validate.
  definition = var.event_type.schema_definition
}

resource "google_pubsub_topic" "events" {
  project = var.project_id
  name    = local.names.topic
  labels  = local.labels

  schema_settings {
    schema   = google_pubsub_schema.events.id
    encoding = "BINARY"
  }
}

resource "google_pubsub_topic" "dead_letter" {
  project = var.project_id
  name    = local.names.dead_letter_topic
  labels  = local.labels
}

resource "google_pubsub_subscription" "etl" {
  project = var.project_id
  name    = local.names.etl_subscription
  topic   = google_pubsub_topic.events.id
  labels  = local.labels

  # The ETL acknowledges a message only once its record is durable in staging.
  ack_deadline_seconds       = var.event_type.ack_deadline_seconds
  message_retention_duration = "${var.event_type.message_retention_days * 86400}s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = "" # never expire, however long the type stays idle
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.event_type.dead_letter_max_attempts
  }

  retry_policy {
    minimum_backoff = "${var.event_type.retry_minimum_backoff_seconds}s"
    maximum_backoff = "${var.event_type.retry_maximum_backoff_seconds}s"
  }
}

resource "google_pubsub_subscription" "dead_letter" {
  project = var.project_id
  name    = local.names.dead_letter_subscription
  topic   = google_pubsub_topic.dead_letter.id
  labels  = local.labels

  # Dead letters are kept for inspection and replay, as long as Pub/Sub allows.
  message_retention_duration = "${31 * 86400}s"
  retain_acked_messages      = true
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub's service agent forwards undeliverable messages: it must publish to the
# dead-letter topic and acknowledge them on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_forwarder" {
  project      = var.project_id
  subscription = google_pubsub_subscription.etl.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# The event service may publish to the type's topic while the type is active; a
# deprecated type keeps draining but accepts nothing new.
resource "google_pubsub_topic_iam_member" "event_service_publisher" {
  count = var.event_type.deprecated ? 0 : 1

  project = var.project_id
  topic   = google_pubsub_topic.events.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.platform.event_service_account_email}"
}

resource "google_pubsub_subscription_iam_member" "etl_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.etl.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.platform.etl_service_account_email}"
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

  time_partitioning {
    type          = var.event_type.partitioning == "hourly" ? "HOUR" : "DAY"
    field         = var.platform.receive_time_column
    expiration_ms = var.event_type.retention_days * 86400000
  }

  # Only the envelope columns exist up front (the partitioning column must). The ETL's
  # load jobs add the payload columns of the delivered schema (ALLOW_FIELD_ADDITION), so
  # Terraform does not own the column list after creation.
  schema = jsonencode([
    { name = "event_id", type = "STRING", mode = "NULLABLE", description = "Producer-chosen (or assigned) event id; unique per partition." },
    { name = var.platform.receive_time_column, type = "TIMESTAMP", mode = "NULLABLE", description = "When the event service accepted the event (UTC); picks the partition." },
    { name = "schema_fingerprint", type = "STRING", mode = "NULLABLE", description = "CRC-64-AVRO fingerprint of the writer schema." },
  ])

  lifecycle {
    ignore_changes = [schema]

    precondition {
      # BigQuery allows 10,000 partitions per table: at most 416 days of hourly partitions.
      condition     = var.event_type.partitioning != "hourly" || var.event_type.retention_days * 24 <= 10000
      error_message = "Hourly partitioning keeps at most 416 days in BigQuery (10,000 partitions); use daily partitioning or a shorter retention."
    }
  }
}

# --- ETL worker group (GKE) ----------------------------------------------------------
# A Deployment whose HorizontalPodAutoscaler follows the subscription's backlog (via the
# Custom Metrics Stackdriver Adapter), not CPU: a pull subscriber can be idle on CPU
# while its backlog grows, and busy on CPU while it keeps up.

resource "kubernetes_service_account_v1" "worker" {
  metadata {
    name      = local.names.worker_group
    namespace = var.platform.kubernetes_namespace
    labels    = local.labels
    annotations = {
      "iam.gke.io/gcp-service-account" = var.platform.etl_service_account_email
    }
  }
}

resource "google_service_account_iam_member" "worker_identity" {
  service_account_id = var.platform.etl_service_account_name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.platform.kubernetes_namespace}/${kubernetes_service_account_v1.worker.metadata[0].name}]"
}

resource "kubernetes_deployment_v1" "worker" {
  metadata {
    name      = local.names.worker_group
    namespace = var.platform.kubernetes_namespace
    labels    = local.labels
  }

  spec {
    selector {
      match_labels = {
        app = local.names.worker_group
      }
    }

    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_unavailable = "0"
        max_surge       = "1"
      }
    }

    template {
      metadata {
        labels = merge(local.labels, { app = local.names.worker_group })
      }

      spec {
        service_account_name = kubernetes_service_account_v1.worker.metadata[0].name
        # Time to finish in-flight writes and nack the rest before SIGKILL.
        termination_grace_period_seconds = var.event_type.ack_deadline_seconds

        container {
          name  = "etl"
          image = var.platform.etl_image
          # The image holds the repository (dependencies installed) as its working directory.
          # The default 160 MB V8 heap keeps a worker draining a large backlog under 300 MB RSS;
          # closing an hour holds its records (~0.7 KB each): size heap_mb for the peak hour (README).
          command = ["node", "--max-old-space-size=${var.event_type.worker.heap_mb}", "--import", "tsx", "etl/main.ts"]

          # etl/config.ts loadConfig: this Deployment hosts one type, reads the registry from
          # Firestore and encrypts personal fields through padlock.
          env {
            name  = "GCP_PROJECT"
            value = var.project_id
          }
          env {
            name  = "EVENT_TYPES"
            value = local.name
          }
          env {
            name  = "DATA_BUCKET"
            value = var.platform.data_bucket
          }
          env {
            name  = "STAGING_BUCKET"
            value = var.platform.staging_bucket
          }
          env {
            name  = "REGISTRY_STORE"
            value = "firestore"
          }
          env {
            # Leases and dead-letter attributes are keyed by it; the default (etl-<pid>) would
            # be etl-1 in every pod.
            name = "INSTANCE_ID"
            value_from {
              field_ref {
                field_path = "metadata.name"
              }
            }
          }
          env {
            # The ETL closes a partition at its priority's deadline: make it this type's SLO,
            # the one the lateness alert below is about.
            name  = "ETL_DEADLINE_${upper(var.event_type.priority)}_MS"
            value = tostring(var.event_type.slo_hours * 3600000)
          }
          env {
            # Every deployment group, primary first: the client fails over in this order.
            name  = "PADLOCK_URL"
            value = join(",", var.platform.padlock_urls)
          }
          env {
            # Padlock's Cloud Run services admit only run.invoker callers: the client sends the
            # workload's identity token (audience: each group's URL) as X-Serverless-Authorization.
            name  = "PADLOCK_ID_TOKEN"
            value = "true"
          }
          env {
            # Must be the name of the ETL's entry in padlock's PADLOCK_SERVICES.
            name  = "PADLOCK_SERVICE"
            value = "etl"
          }
          env {
            # Created by ops per cluster (kubectl create secret), so it never lands in Terraform state.
            name = "PADLOCK_SECRET"
            value_from {
              secret_key_ref {
                name = "padlock-client"
                key  = "secret"
              }
            }
          }

          resources {
            requests = {
              cpu    = var.event_type.worker.cpu
              memory = var.event_type.worker.memory
            }
            limits = {
              cpu    = var.event_type.worker.cpu
              memory = var.event_type.worker.memory
            }
          }
        }
      }
    }
  }

  wait_for_rollout = false

  lifecycle {
    # The HorizontalPodAutoscaler owns the replica count.
    ignore_changes = [spec[0].replicas]
  }

  depends_on = [google_service_account_iam_member.worker_identity]
}

resource "kubernetes_horizontal_pod_autoscaler_v2" "worker" {
  metadata {
    name      = local.names.worker_group
    namespace = var.platform.kubernetes_namespace
    labels    = local.labels
  }

  spec {
    min_replicas = var.event_type.worker.min_replicas
    max_replicas = var.event_type.worker.max_replicas

    scale_target_ref {
      api_version = "apps/v1"
      kind        = "Deployment"
      name        = kubernetes_deployment_v1.worker.metadata[0].name
    }

    # Backlog size per replica…
    metric {
      type = "External"
      external {
        metric {
          name = "pubsub.googleapis.com|subscription|num_undelivered_messages"
          selector {
            match_labels = {
              "resource.labels.subscription_id" = google_pubsub_subscription.etl.name
            }
          }
        }
        target {
          type          = "AverageValue"
          average_value = tostring(var.event_type.worker.target_undelivered_per_replica)
        }
      }
    }

    # …and backlog age: a small but stuck backlog scales out too. The HPA takes the larger.
    metric {
      type = "External"
      external {
        metric {
          name = "pubsub.googleapis.com|subscription|oldest_unacked_message_age"
          selector {
            match_labels = {
              "resource.labels.subscription_id" = google_pubsub_subscription.etl.name
            }
          }
        }
        target {
          type  = "Value"
          value = tostring(var.event_type.worker.target_oldest_unacked_age_seconds)
        }
      }
    }

    behavior {
      scale_down {
        # Pub/Sub metrics arrive about a minute late; don't flap on them.
        stabilization_window_seconds = 600
        select_policy                = "Max"
        policy {
          type           = "Percent"
          value          = 50
          period_seconds = 120
        }
      }
    }
  }
}

# --- Alerts by priority ---------------------------------------------------------------
# PromQL conditions, so a low-priority type's alerts can be limited to working hours
# with PromQL time functions (Cloud Monitoring alert policies have no schedule).

locals {
  slo_seconds         = var.event_type.slo_hours * 3600
  backlog_age_seconds = floor(local.slo_seconds * var.backlog_alert_fraction)

  # PromQL hour() and day_of_week() are UTC; shift by the configured offset (no DST).
  local_time            = "vector(time() + ${var.platform.working_hours.utc_offset_hours * 3600})"
  working_hours         = <<-EOT
    and on() (hour(${local.local_time}) >= ${var.platform.working_hours.start_hour} < ${var.platform.working_hours.end_hour})
    and on() (day_of_week(${local.local_time}) >= 1 <= 5)
  EOT
  only_in_working_hours = var.event_type.priority == "low" ? local.working_hours : ""

  alert_severity = {
    high   = "CRITICAL"
    normal = "ERROR"
    low    = "WARNING"
  }[var.event_type.priority]

  notification_channels = var.platform.notification_channels[var.event_type.priority]
}

resource "google_monitoring_alert_policy" "backlog_age" {
  project               = var.project_id
  display_name          = "${local.name}: ETL backlog older than ${local.backlog_age_seconds / 3600} h"
  combiner              = "OR"
  severity              = local.alert_severity
  notification_channels = local.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "oldest unacked message on ${local.names.etl_subscription}"
    condition_prometheus_query_language {
      query               = <<-EOT
        max(pubsub_googleapis_com:subscription_oldest_unacked_message_age{monitored_resource="pubsub_subscription",subscription_id="${local.names.etl_subscription}"}) > ${local.backlog_age_seconds}
        ${local.only_in_working_hours}
      EOT
      duration            = "300s"
      evaluation_interval = "60s"
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      The ETL worker group `${local.names.worker_group}` of event type `${local.name}` (owner: ${var.event_type.owner}, priority: ${var.event_type.priority}) is behind: its oldest unacknowledged message is older than ${local.backlog_age_seconds} s, ${var.backlog_alert_fraction * 100} % of the type's ${var.event_type.slo_hours} h delivery SLO.
      Check the worker group's pods and logs (`kubectl -n ${var.platform.kubernetes_namespace} get deploy,hpa ${local.names.worker_group}`), its dead-letter subscription `${local.names.dead_letter_subscription}`, and padlock.
      ${var.event_type.priority == "low" ? "Low priority: this alert only fires on weekdays between ${var.platform.working_hours.start_hour}:00 and ${var.platform.working_hours.end_hour}:00 (UTC${var.platform.working_hours.utc_offset_hours >= 0 ? "+" : ""}${var.platform.working_hours.utc_offset_hours})." : ""}
    EOT
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "${local.name}: events dead-lettered"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "undelivered messages on ${local.names.dead_letter_subscription}"
    condition_prometheus_query_language {
      query               = <<-EOT
        max(pubsub_googleapis_com:subscription_num_undelivered_messages{monitored_resource="pubsub_subscription",subscription_id="${local.names.dead_letter_subscription}"}) > 0
        ${local.only_in_working_hours}
      EOT
      duration            = "60s"
      evaluation_interval = "60s"
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      The ETL of event type `${local.name}` (owner: ${var.event_type.owner}) gave up on events after ${var.event_type.dead_letter_max_attempts} delivery attempts; they wait in `${local.names.dead_letter_subscription}` (kept 31 days).
      Inspect them (`gcloud pubsub subscriptions pull ${local.names.dead_letter_subscription} --limit 5`), fix the cause, then replay them to `${local.names.topic}`.
    EOT
  }
}

resource "google_monitoring_alert_policy" "partition_lateness" {
  project               = var.project_id
  display_name          = "${local.name}: partitions closed at the ${var.event_type.slo_hours} h SLO deadline"
  combiner              = "OR"
  severity              = local.alert_severity
  notification_channels = local.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "partitions of ${local.name} force-closed at their SLO deadline"
    condition_prometheus_query_language {
      query               = <<-EOT
        sum(increase(${var.platform.late_partition_metric}{event_type="${local.name}"}[1h])) > 0
        ${local.only_in_working_hours}
      EOT
      duration            = "0s"
      evaluation_interval = "60s"
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      A partition of event type `${local.name}` (owner: ${var.event_type.owner}, priority: ${var.event_type.priority}) was not complete ${var.event_type.slo_hours} h after it ended: the ETL closed it at its SLO deadline, and its manifest says so. Its late events go to the late location.
      Compare the manifest's audit (accepted vs delivered), then the worker group `${local.names.worker_group}` and the event service.
      ${var.event_type.priority == "low" ? "Low priority: this alert only fires on weekdays between ${var.platform.working_hours.start_hour}:00 and ${var.platform.working_hours.end_hour}:00 (UTC${var.platform.working_hours.utc_offset_hours >= 0 ? "+" : ""}${var.platform.working_hours.utc_offset_hours})." : ""}
    EOT
  }
}
