# Stage 2 of 2: the Kubernetes side, in the cluster stage 1 created. Its provider is
# configured from stage 1's state, which exists before this plan starts.

provider "google" {
  project = var.project_id
  region  = var.region
}

data "terraform_remote_state" "platform" {
  backend = "gcs"
  config = {
    bucket = var.platform_state.bucket
    prefix = var.platform_state.prefix
  }
}

data "google_client_config" "default" {}

locals {
  platform = data.terraform_remote_state.platform.outputs
  # The same export stage 1 applies: every type, BigQuery-only ones included, gets a worker
  # group, so no subscription is left unconsumed.
  event_types = jsondecode(file("${path.module}/../event_types.auto.tfvars.json")).event_types
  # The capacity model's sizing of types with an expected volume (`composer export terraform`
  # writes it beside the export; docs/capacity.md). Absent: the module's defaults.
  worker_sizing = try(jsondecode(file("${path.module}/../worker_sizing.json")).worker_sizing, {})
}

provider "kubernetes" {
  host                   = "https://${local.platform.etl_cluster.endpoint}"
  token                  = data.google_client_config.default.access_token
  cluster_ca_certificate = base64decode(local.platform.etl_cluster.ca_certificate)
}

resource "kubernetes_namespace_v1" "etl" {
  metadata {
    name = local.platform.worker_group_platform.kubernetes_namespace
  }
}

# Serves the Pub/Sub backlog metric to the worker groups' autoscalers.
module "custom_metrics_adapter" {
  source = "../../../modules/custom-metrics-adapter"
}

module "worker_group" {
  source   = "../../../modules/worker-group"
  for_each = local.event_types

  project_id = var.project_id
  # The capacity model's sizing, then ops' worker sizing, if any, replace the module's default.
  event_type = merge(
    each.value,
    { for name, w in local.worker_sizing : "worker" => { min_replicas = w.min_replicas, max_replicas = w.max_replicas, heap_mb = w.heap_mb } if name == each.key },
    { for name, w in var.worker_overrides : "worker" => w if name == each.key },
  )
  platform = local.platform.worker_group_platform

  depends_on = [kubernetes_namespace_v1.etl, module.custom_metrics_adapter]
}
