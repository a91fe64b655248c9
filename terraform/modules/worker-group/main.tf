# The Kubernetes side of one event type's ETL worker group. Applied from a root whose
# kubernetes provider reads the cluster from the platform's state (see
# terraform/examples/complete/workloads), never from the apply that creates the cluster.

locals {
  name = var.event_type.name

  # MUST equal lib/metrics.ts ETL_METRICS_PORT and METRICS_PATH (test/repo/metric-names.test.ts):
  # where the ETL serves its Prometheus metrics, and the PodMonitoring below scrapes them.
  metrics_port = 9464
  metrics_path = "/metrics"

  # MUST equal `resourceNames` in lib/names.ts (test/terraform.test.ts).
  names = {
    etl_subscription = "events-${local.name}-etl"
    worker_group     = "etl-${replace(local.name, "_", "-")}"
  }

  # Kubernetes label values: at most 63 characters, alphanumeric at both ends.
  owner_label = replace(substr(replace(lower(var.event_type.owner), "/[^a-z0-9_.-]/", "-"), 0, 63), "/^[^a-z0-9]+|[^a-z0-9]+$/", "")
  labels = merge(var.platform.labels, {
    event_type = local.name
    team       = local.owner_label
    owner      = local.owner_label
    priority   = var.event_type.priority
    lifecycle  = var.event_type.deprecated ? "deprecated" : "active"
  })

  # The BigQuery loader's configuration (etl/config.ts), for a type stored in BigQuery. No
  # BIGQUERY_ENDPOINT: the loader talks to Google and leaves the dataset and table to Terraform.
  to_bigquery = contains(var.event_type.storage, "bigquery")
  loader_env = {
    BIGQUERY_DATASET  = var.platform.bigquery_dataset
    BIGQUERY_LOCATION = var.platform.bigquery_location
  }
}

# --- ETL worker group (GKE) -------------------------------------------------------------
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
          env {
            # The ETL's Prometheus metrics (lib/metrics.ts), scraped by the PodMonitoring below.
            name  = "ETL_METRICS_PORT"
            value = tostring(local.metrics_port)
          }
          port {
            name           = "metrics"
            container_port = local.metrics_port
          }
          dynamic "env" {
            for_each = local.to_bigquery ? local.loader_env : {}
            content {
              name  = env.key
              value = env.value
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

    # Backlog size per replica only. Not the backlog's age: one stuck message, or padlock
    # being down, ages the backlog however many workers run, so scaling on age would grow
    # the group to its maximum for nothing. Age is an alert (composer/monitoring.ts).
    metric {
      type = "External"
      external {
        metric {
          name = "pubsub.googleapis.com|subscription|num_undelivered_messages"
          selector {
            match_labels = {
              "resource.labels.subscription_id" = local.names.etl_subscription
            }
          }
        }
        target {
          type          = "AverageValue"
          average_value = tostring(var.event_type.worker.target_undelivered_per_replica)
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


# --- Metrics ---------------------------------------------------------------------------
# Google Cloud Managed Service for Prometheus (on by default in Autopilot) scrapes every
# worker's /metrics and stores each series in Cloud Monitoring as
# prometheus.googleapis.com/<name>/<kind>; the event-type module's alert policies query them
# by their Prometheus names (composer/monitoring.ts). The collector writes with the nodes'
# identity (roles/container.defaultNodeServiceAccount includes monitoring.timeSeries.create).

resource "kubernetes_manifest" "worker_metrics" {
  manifest = {
    apiVersion = "monitoring.googleapis.com/v1"
    kind       = "PodMonitoring"
    metadata = {
      name      = local.names.worker_group
      namespace = var.platform.kubernetes_namespace
      labels    = local.labels
    }
    spec = {
      selector = {
        matchLabels = {
          app = local.names.worker_group
        }
      }
      endpoints = [
        {
          port     = "metrics"
          path     = local.metrics_path
          interval = "60s"
        }
      ]
    }
  }
}
