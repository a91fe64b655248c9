# Stage 1 of 2: everything on Google Cloud. The Kubernetes side (worker groups, the
# custom-metrics adapter) is stage 2, ./workloads, whose kubernetes provider reads this
# stage's outputs from its state: a provider configured from resources of its own apply
# cannot plan before they exist.

provider "google" {
  project = var.project_id
  region  = var.region
}

locals {
  labels = {
    environment = var.environment
    system      = "event-platform"
  }
}

resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "bigtable.googleapis.com",
    "bigtableadmin.googleapis.com",
    "cloudkms.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",
    "container.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# Alert notification channels, one per address: high pages, normal and low go to a queue.
locals {
  alert_emails = toset(flatten(values(var.alert_emails)))
}

resource "google_monitoring_notification_channel" "email" {
  for_each = local.alert_emails

  project      = var.project_id
  display_name = "Event platform alerts: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }
  user_labels = local.labels

  depends_on = [google_project_service.apis]
}

module "platform" {
  source = "../../modules/platform"

  project_id   = var.project_id
  provisioning = var.provisioning
  region       = var.region
  labels       = local.labels

  storage = {
    location = var.location.storage
    data_retention_days_by_prefix = {
      for name, t in var.event_types : "${name}/" => t.retention_days if contains(t.storage, "gcs")
    }
  }
  bigquery       = { location = var.location.bigquery }
  registry_store = { location_id = var.location.registry }

  event_service = {
    image           = var.images.event_service
    invoker_members = var.event_service_invokers
  }

  status = {
    image          = var.images.status
    viewer_members = var.status_viewers
  }

  padlock = {
    image                     = var.images.padlock
    mirror_region             = var.padlock.mirror_region
    peak_requests_per_second  = var.padlock.peak_requests_per_second
    service_secrets_secret_id = var.padlock.service_secrets_secret_id
  }

  etl = {
    image = var.images.etl
  }

  alerting = {
    notification_channels = {
      for priority, emails in var.alert_emails : priority => [for e in emails : google_monitoring_notification_channel.email[e].name]
    }
  }

  # APIs must be on before the first resource of each service is created.
  depends_on = [google_project_service.apis]
}

module "event_type" {
  source   = "../../modules/event-type"
  for_each = var.event_types

  project_id = var.project_id
  event_type = each.value
  platform   = module.platform.event_type_platform

  # The workload identity pool comes with the cluster.
  depends_on = [module.platform]
}
