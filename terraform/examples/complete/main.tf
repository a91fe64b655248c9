provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_client_config" "default" {}

provider "kubernetes" {
  host                   = "https://${module.platform.etl_cluster.endpoint}"
  token                  = data.google_client_config.default.access_token
  cluster_ca_certificate = base64decode(module.platform.etl_cluster.ca_certificate)
}

locals {
  labels = {
    environment = var.environment
    system      = "event-platform"
  }
}

resource "google_project_service" "apis" {
  for_each = toset([
    "bigquery.googleapis.com",
    "bigtableadmin.googleapis.com",
    "cloudkms.googleapis.com",
    "container.googleapis.com",
    "firestore.googleapis.com",
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

module "platform" {
  source = "../../modules/platform"

  project_id = var.project_id
  region     = var.region
  labels     = local.labels

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
    notification_channels = var.notification_channels
  }

  # APIs must be on before the first resource of each service is created.
  depends_on = [google_project_service.apis]
}

resource "kubernetes_namespace_v1" "etl" {
  metadata {
    name   = module.platform.etl_namespace
    labels = local.labels
  }
}

module "event_type" {
  source   = "../../modules/event-type"
  for_each = var.event_types

  project_id = var.project_id
  # Ops' worker sizing, if any, replaces the exported default.
  event_type = merge(each.value, { for name, w in var.worker_overrides : "worker" => w if name == each.key })
  platform   = merge(module.platform.event_type_platform, { kubernetes_namespace = kubernetes_namespace_v1.etl.metadata[0].name })
}
