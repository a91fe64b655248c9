data "google_project" "this" {
  project_id = var.project_id
}

locals {
  labels = merge(var.labels, {
    team  = "platform"
    owner = "platform"
  })

  data_bucket    = coalesce(var.storage.data_bucket_name, "${var.project_id}-events-data")
  staging_bucket = coalesce(var.storage.staging_bucket_name, "${var.project_id}-events-staging")

  # Both padlock deployment groups get the instances ALL traffic needs (plus headroom):
  # each must carry the whole load when the other region is down.
  padlock_max_instances = ceil(var.padlock.peak_requests_per_second / var.padlock.requests_per_second_per_instance * var.padlock.headroom)
  padlock_groups = {
    "padlock"        = var.region
    "padlock-mirror" = var.padlock.mirror_region
  }

  bigtable_clusters = {
    primary = { region = var.region, zone = coalesce(var.key_store.primary_zone, "${var.region}-b") }
    mirror  = { region = var.padlock.mirror_region, zone = coalesce(var.key_store.mirror_zone, "${var.padlock.mirror_region}-b") }
  }

  registry_database_condition = "resource.name == \"projects/${var.project_id}/databases/${var.registry_store.database_id}\""

  # MUST equal lib/names.ts (metricNames.partitionsClosedAtDeadline, keychainFamilies);
  # test/terraform.test.ts checks both.
  late_partition_metric_name  = "etl_partitions_closed_at_deadline"
  loading_stopped_metric_name = "etl_bigquery_loading_stopped"
  keychain_families           = ["k", "t"]

  # Who owns the per-type Pub/Sub resources (composer/provisioning.ts `ownerOf`).
  composer_provisions = var.provisioning == "composer"
}

# --- Service accounts, one per component ----------------------------------------------

resource "google_service_account" "component" {
  for_each = {
    "event-service" = "Event service: publishes accepted events, writes audit counts"
    "etl"           = "ETL worker groups: subscribe, stage, deliver, load, call padlock"
    "padlock"       = "Padlock key service: wraps root keys with KMS, key store"
    "composer"      = "Composer: event-type registry and provisioning"
    "status"        = "Partition status service: reads the buckets, the registry and the dead letters"
  }

  project      = var.project_id
  account_id   = "events-${each.key}"
  display_name = "Event platform ${each.key}"
  description  = each.value
}

locals {
  sa = { for k, v in google_service_account.component : k => "serviceAccount:${v.email}" }
}

# --- Cloud KMS: padlock's key-encryption key ------------------------------------------

# A multi-region key ring: both padlock deployment groups (two regions) keep using the KEK
# when either region is down.
resource "google_kms_key_ring" "platform" {
  project  = var.project_id
  name     = var.kms.key_ring_name
  location = var.kms.location
}

resource "google_kms_crypto_key" "padlock_kek" {
  name            = var.kms.key_name
  key_ring        = google_kms_key_ring.platform.id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = "${var.kms.rotation_period_days * 86400}s"
  labels          = local.labels

  version_template {
    algorithm        = "GOOGLE_SYMMETRIC_ENCRYPTION"
    protection_level = "SOFTWARE"
  }

  lifecycle {
    # Destroying the KEK makes every wrapped root key, hence all personal data, unreadable.
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key_iam_member" "padlock_kek" {
  crypto_key_id = google_kms_crypto_key.padlock_kek.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.sa["padlock"]
}

# Every use of the KEK (wrap/unwrap) is recorded in Cloud Audit Logs.
resource "google_project_iam_audit_config" "kms" {
  project = var.project_id
  service = "cloudkms.googleapis.com"

  audit_log_config {
    log_type = "ADMIN_READ"
  }
  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}

# --- Cloud Storage --------------------------------------------------------------------

resource "google_storage_bucket" "data" {
  project                     = var.project_id
  name                        = local.data_bucket
  location                    = var.storage.location
  labels                      = local.labels
  force_destroy               = var.storage.force_destroy
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Closed partitions are immutable through Object Retention Lock: after _SUCCESS the ETL gives
  # each object its manifest lists, and _SUCCESS, an Unlocked retention until the period's end
  # plus the type's retention (etl/seal.ts), which nobody without
  # storage.objects.overrideUnlockedRetention (an admin's permission, not the ETL's) can shorten
  # or remove. A bucket retention policy (Bucket Lock) would not do: it would also freeze the
  # objects the ETL must still delete or overwrite (stale parts of a crashed close, _LATE).
  # Set at creation only; for a bucket created before, enable it in the console first
  # (docs/operations.md).
  enable_object_retention = true

  # Deleted or overwritten objects that nothing retains (late files, _LATE, stale parts) stay
  # restorable for this long.
  soft_delete_policy {
    retention_duration_seconds = var.storage.data_soft_delete_days * 86400
  }

  # Each type's partitions expire after its retention.
  dynamic "lifecycle_rule" {
    for_each = var.storage.data_retention_days_by_prefix
    content {
      condition {
        age            = lifecycle_rule.value
        matches_prefix = [lifecycle_rule.key]
      }
      action {
        type = "Delete"
      }
    }
  }
}

resource "google_storage_bucket" "staging" {
  project                     = var.project_id
  name                        = local.staging_bucket
  location                    = var.storage.location
  labels                      = local.labels
  force_destroy               = var.storage.force_destroy
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Staged parts are deleted as soon as their hour closes: soft delete would only bill
  # for keeping that churn.
  soft_delete_policy {
    retention_duration_seconds = 0
  }

  # Staged parts are moved into partitions when their hour closes (at the latest at the SLO).
  lifecycle_rule {
    condition {
      age = var.storage.staging_object_max_age_days
    }
    action {
      type = "Delete"
    }
  }

  # The event service's audit counts under audit/ (lib/events/contract.ts).
  lifecycle_rule {
    condition {
      age            = var.storage.audit_object_max_age_days
      matches_prefix = ["audit/"]
    }
    action {
      type = "Delete"
    }
  }
}

# The event service only writes (and overwrites) its audit counts under audit/.
resource "google_storage_bucket_iam_member" "event_service_audit" {
  bucket = google_storage_bucket.staging.name
  role   = "roles/storage.objectUser"
  member = local.sa["event-service"]

  condition {
    title      = "audit-prefix-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.staging.name}/objects/audit/\")"
  }
}

# Staged files, leases and audit counts: create, read, list, delete.
resource "google_storage_bucket_iam_member" "etl_staging" {
  bucket = google_storage_bucket.staging.name
  role   = "roles/storage.objectUser"
  member = local.sa["etl"]
}

# What the ETL does in the data bucket, and no more: create, read, list, delete/overwrite (its
# own code does: etl/closer.ts deletes stale parts of a crashed close, etl/late.ts rewrites
# _LATE), and seal closed partitions (update + setRetention, etl/seal.ts). No predefined role
# has setRetention without overrideUnlockedRetention, which would let the ETL lift a seal.
resource "google_project_iam_custom_role" "etl_data_writer" {
  project     = var.project_id
  role_id     = "edpEtlDataWriter"
  title       = "Event platform ETL: data bucket writer"
  description = "Writes partitions and seals closed ones with an object retention it cannot shorten or remove (no storage.objects.overrideUnlockedRetention)."
  permissions = [
    "storage.objects.create",
    "storage.objects.delete",
    "storage.objects.get",
    "storage.objects.list",
    "storage.objects.setRetention",
    "storage.objects.update",
  ]
}

resource "google_storage_bucket_iam_member" "etl_data" {
  bucket = google_storage_bucket.data.name
  role   = google_project_iam_custom_role.etl_data_writer.id
  member = local.sa["etl"]
}

# BigQuery load jobs read the partitions' files with the ETL's credentials, and Google
# requires storage.buckets.get on the source bucket for a load (besides storage.objects.get,
# which objectUser grants): the smallest role with it.
resource "google_storage_bucket_iam_member" "etl_data_loads" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.legacyBucketReader"
  member = local.sa["etl"]
}

# The composer checks the data bucket exists (storage.buckets.get) before it records a
# GCS type as provisioned, and its shred report lists the data bucket (storage.objects.list).
resource "google_storage_bucket_iam_member" "composer_data" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.legacyBucketReader"
  member = local.sa["composer"]
}

# The shred report reads subject indexes, parts and late files (storage.objects.get);
# reading needs no listing beyond the bucket reader's.
resource "google_storage_bucket_iam_member" "composer_data_objects" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.legacyObjectReader"
  member = local.sa["composer"]
}

# The partition status service lists and reads both buckets (functions/status/scanner.ts):
# staged files, leases and audit counts; partitions' markers and late counters. It writes nothing.
resource "google_storage_bucket_iam_member" "status_staging" {
  bucket = google_storage_bucket.staging.name
  role   = "roles/storage.objectViewer"
  member = local.sa["status"]
}

resource "google_storage_bucket_iam_member" "status_data" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectViewer"
  member = local.sa["status"]
}

# --- BigQuery -------------------------------------------------------------------------

resource "google_bigquery_dataset" "events" {
  project                    = var.project_id
  dataset_id                 = var.bigquery.dataset_id
  location                   = var.bigquery.location
  description                = "Delivered events, one table per event type, partitioned by receive time."
  labels                     = local.labels
  delete_contents_on_destroy = false
}

# The BigQuery loader runs inside each type's ETL worker group: it writes this dataset only
# (tables.get, tables.patch, load jobs into the tables), and runs load jobs in the project.
# It never creates the dataset or a table here: this module and the event-type module do.
resource "google_bigquery_dataset_iam_member" "etl" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.events.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.sa["etl"]
}

resource "google_project_iam_member" "etl_load_jobs" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = local.sa["etl"]
}

# --- Registry store (Firestore, Native mode) ------------------------------------------

resource "google_firestore_database" "registry" {
  project                 = var.project_id
  name                    = var.registry_store.database_id
  location_id             = var.registry_store.location_id
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy         = var.deletion_protection ? "ABANDON" : "DELETE"
}

# Firestore roles are project-level; the condition limits them to the registry database.
resource "google_project_iam_member" "registry_readers" {
  for_each = toset(["event-service", "etl", "status"])

  project = var.project_id
  role    = "roles/datastore.viewer"
  member  = local.sa[each.key]

  condition {
    title      = "registry-database-only"
    expression = local.registry_database_condition
  }

  depends_on = [google_firestore_database.registry]
}

resource "google_project_iam_member" "registry_writer" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = local.sa["composer"]

  condition {
    title      = "registry-database-only"
    expression = local.registry_database_condition
  }

  depends_on = [google_firestore_database.registry]
}

# --- Composer: per-type Pub/Sub resources, by provisioning mode ------------------------

# provisioning = "composer": the composer creates, updates and deletes the per-type topics,
# schemas and subscriptions. Pub/Sub IAM has no name-prefix scoping, so this is project-wide
# (hence a project of its own for the platform); editor, not admin: it cannot change IAM.
# provisioning = "terraform": the composer only reads them (export's import blocks).
resource "google_project_iam_member" "composer_pubsub" {
  project = var.project_id
  role    = local.composer_provisions ? "roles/pubsub.editor" : "roles/pubsub.viewer"
  member  = local.sa["composer"]
}

# --- Key store (Bigtable) -------------------------------------------------------------

resource "google_bigtable_instance" "keys" {
  project             = var.project_id
  name                = var.key_store.instance_name
  display_name        = "padlock key store"
  labels              = local.labels
  deletion_protection = var.deletion_protection

  dynamic "cluster" {
    for_each = local.bigtable_clusters
    content {
      cluster_id   = "${var.key_store.instance_name}-${cluster.key}"
      zone         = cluster.value.zone
      storage_type = var.key_store.storage_type

      autoscaling_config {
        min_nodes  = var.key_store.min_nodes
        max_nodes  = var.key_store.max_nodes
        cpu_target = var.key_store.cpu_target
      }
    }
  }
}

# Keychain creation is create-if-absent (check-and-mutate), which Bigtable allows only with
# single-cluster routing and transactional writes: the primary group uses this profile.
resource "google_bigtable_app_profile" "padlock" {
  project        = var.project_id
  instance       = google_bigtable_instance.keys.name
  app_profile_id = "padlock"
  description    = "Padlock: single-cluster routing, transactional writes for create-if-absent"

  single_cluster_routing {
    cluster_id                 = "${var.key_store.instance_name}-primary"
    allow_transactional_writes = true
  }

  ignore_warnings = true
}

# The mirror group must survive the primary region: multi-cluster routing, nearest cluster
# first, failing over automatically. Lookups and deletes work through it; a keychain
# creation (check-and-mutate) is refused on it and fails fast, so the ETL nacks and retries
# (the primary group serves creates whenever it is up).
resource "google_bigtable_app_profile" "padlock_mirror" {
  project        = var.project_id
  instance       = google_bigtable_instance.keys.name
  app_profile_id = "padlock-mirror"
  description    = "Padlock mirror: multi-cluster routing, automatic failover"

  multi_cluster_routing_use_any = true
  multi_cluster_routing_cluster_ids = [
    "${var.key_store.instance_name}-mirror",
    "${var.key_store.instance_name}-primary",
  ]

  ignore_warnings = true
}

resource "google_bigtable_table" "keychains" {
  project             = var.project_id
  instance_name       = google_bigtable_instance.keys.name
  name                = var.key_store.table_name
  deletion_protection = var.deletion_protection ? "PROTECTED" : "UNPROTECTED"

  # functions/padlock/bigtable-store.ts writes these families (lib/names.ts keychainFamilies).
  dynamic "column_family" {
    for_each = toset(local.keychain_families)
    content {
      family = column_family.value
    }
  }
}

# One version per cell: a wrapped key or tombstone is written once; a deleted key must
# leave no older version behind.
resource "google_bigtable_gc_policy" "keychains" {
  for_each = toset(local.keychain_families)

  project         = var.project_id
  instance_name   = google_bigtable_instance.keys.name
  table           = google_bigtable_table.keychains.name
  column_family   = each.value
  deletion_policy = "ABANDON"

  max_version {
    number = 1
  }
}

# Read and write the keychains table only, not the rest of the instance.
# `instance_name`: the 7.x name of the argument, also accepted from 6.50 (hence the constraint).
resource "google_bigtable_table_iam_member" "padlock" {
  project       = var.project_id
  instance_name = google_bigtable_instance.keys.name
  table         = google_bigtable_table.keychains.name
  role          = "roles/bigtable.user"
  member        = local.sa["padlock"]
}

resource "google_secret_manager_secret_iam_member" "padlock_service_secrets" {
  project   = var.project_id
  secret_id = var.padlock.service_secrets_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.sa["padlock"]
}

# --- Cloud Run: event service and padlock ---------------------------------------------

resource "google_cloud_run_v2_service" "event_service" {
  project             = var.project_id
  name                = "event-service"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  labels              = local.labels
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.component["event-service"].email
    max_instance_request_concurrency = var.event_service.concurrency

    scaling {
      min_instance_count = var.event_service.min_instances
      max_instance_count = var.event_service.max_instances
    }

    containers {
      image = var.event_service.image

      resources {
        limits = {
          cpu    = var.event_service.cpu
          memory = var.event_service.memory
        }
      }

      # functions/event-service/config.ts loadConfig. Cloud Run sets PORT; HOST defaults to 0.0.0.0.
      env {
        name  = "GCP_PROJECT"
        value = var.project_id
      }
      env {
        name  = "STAGING_BUCKET"
        value = google_storage_bucket.staging.name
      }
      env {
        # The registry the composer writes: Firestore (Native mode), default database.
        name  = "REGISTRY_STORE"
        value = "firestore"
      }
    }
  }
}

resource "google_cloud_run_v2_service_iam_member" "event_service_invokers" {
  for_each = toset(var.event_service.invoker_members)

  project  = var.project_id
  location = google_cloud_run_v2_service.event_service.location
  name     = google_cloud_run_v2_service.event_service.name
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_run_v2_service" "padlock" {
  for_each = local.padlock_groups

  project             = var.project_id
  name                = each.key
  location            = each.value
  ingress             = "INGRESS_TRAFFIC_ALL"
  labels              = merge(local.labels, { deployment_group = each.key })
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.component["padlock"].email
    max_instance_request_concurrency = var.padlock.concurrency

    scaling {
      min_instance_count = var.padlock.min_instances
      max_instance_count = local.padlock_max_instances
    }

    containers {
      image = var.padlock.image

      resources {
        limits = {
          cpu    = var.padlock.cpu
          memory = var.padlock.memory
        }
      }

      # functions/padlock/config.ts loadConfig, production mode: KMS KEK and Bigtable store.
      ports {
        container_port = 8080
      }
      env {
        name  = "PADLOCK_MODE"
        value = "production"
      }
      env {
        name  = "PADLOCK_HOST"
        value = "0.0.0.0"
      }
      env {
        # Padlock reads PADLOCK_PORT, not Cloud Run's PORT; both are the container port.
        name  = "PADLOCK_PORT"
        value = "8080"
      }
      env {
        name  = "GCP_PROJECT"
        value = var.project_id
      }
      env {
        name  = "PADLOCK_KMS_KEY"
        value = google_kms_crypto_key.padlock_kek.id
      }
      env {
        name  = "PADLOCK_STORE"
        value = "bigtable"
      }
      env {
        name  = "PADLOCK_BIGTABLE_INSTANCE"
        value = google_bigtable_instance.keys.name
      }
      env {
        name  = "PADLOCK_BIGTABLE_TABLE"
        value = google_bigtable_table.keychains.name
      }
      env {
        # Primary: single-cluster routing with transactional writes (create-if-absent is a
        # check-and-mutate). Mirror: multi-cluster routing, so it survives the primary region.
        name  = "PADLOCK_BIGTABLE_APP_PROFILE"
        value = each.key == "padlock" ? google_bigtable_app_profile.padlock.app_profile_id : google_bigtable_app_profile.padlock_mirror.app_profile_id
      }
      env {
        # JSON array of {name, secretSha256, contexts?, admin?}: the calling services.
        name = "PADLOCK_SERVICES"
        value_source {
          secret_key_ref {
            secret  = var.padlock.service_secrets_secret_id
            version = "latest"
          }
        }
      }
    }
  }

  # The revision reads the secret at start; the grant must exist first.
  depends_on = [google_secret_manager_secret_iam_member.padlock_service_secrets]
}

resource "google_cloud_run_v2_service_iam_member" "padlock_invoker" {
  for_each = google_cloud_run_v2_service.padlock

  project  = var.project_id
  location = each.value.location
  name     = each.value.name
  role     = "roles/run.invoker"
  member   = local.sa["etl"]
}

# --- Cloud Run: partition status service ---------------------------------------------

# An internal page: like the event service and padlock, every request needs an identity token
# of a member granted roles/run.invoker (var.status.viewer_members); nobody else, and no
# allUsers. One instance with its CPU always allocated: requests are answered from memory
# that a listing pass refreshes every 15 s between requests (functions/status/scanner.ts),
# and a second instance would only repeat the listing and the dead-letter pulls.
resource "google_cloud_run_v2_service" "status" {
  project             = var.project_id
  name                = "status"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  labels              = local.labels
  deletion_protection = var.deletion_protection

  template {
    service_account = google_service_account.component["status"].email

    scaling {
      min_instance_count = 1
      max_instance_count = 1
    }

    containers {
      image = var.status.image

      resources {
        cpu_idle = false
        limits = {
          cpu    = var.status.cpu
          memory = var.status.memory
        }
      }

      # functions/status/config.ts loadConfig. Cloud Run sets PORT; STATUS_HOST defaults to
      # 0.0.0.0; the close timing defaults are the ETL's (3/24/72 h by priority).
      env {
        name  = "GCP_PROJECT"
        value = var.project_id
      }
      env {
        name  = "STAGING_BUCKET"
        value = google_storage_bucket.staging.name
      }
      env {
        name  = "DATA_BUCKET"
        value = google_storage_bucket.data.name
      }
      env {
        # The registry the composer writes: Firestore (Native mode), default database.
        name  = "REGISTRY_STORE"
        value = "firestore"
      }
    }
  }

  # The first listing pass reads the buckets and the registry at start.
  depends_on = [
    google_storage_bucket_iam_member.status_staging,
    google_storage_bucket_iam_member.status_data,
    google_project_iam_member.registry_readers,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "status_viewers" {
  for_each = toset(var.status.viewer_members)

  project  = var.project_id
  location = google_cloud_run_v2_service.status.location
  name     = google_cloud_run_v2_service.status.name
  role     = "roles/run.invoker"
  member   = each.value
}

# --- ETL: GKE Autopilot cluster -------------------------------------------------------

# The nodes' own identity: pulls images, writes logs and metrics. Without it Autopilot uses
# the Compute Engine default account, which many organisations strip of every role.
resource "google_service_account" "gke_nodes" {
  project      = var.project_id
  account_id   = "events-gke-nodes"
  display_name = "Event platform GKE nodes"
  description  = "ETL cluster nodes: pull images, write logs and metrics"
}

resource "google_project_iam_member" "gke_nodes" {
  for_each = toset(["roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.gke_nodes.email}"
}

resource "google_container_cluster" "etl" {
  project             = var.project_id
  name                = var.etl.cluster_name
  location            = var.region
  enable_autopilot    = true
  network             = var.etl.network
  subnetwork          = var.etl.subnetwork
  resource_labels     = local.labels
  deletion_protection = var.deletion_protection

  cluster_autoscaling {
    auto_provisioning_defaults {
      service_account = google_service_account.gke_nodes.email
      oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    }
  }

  release_channel {
    channel = "REGULAR"
  }

  depends_on = [google_project_iam_member.gke_nodes]
}

# The Custom Metrics Stackdriver Adapter (terraform/modules/custom-metrics-adapter) reads
# the Pub/Sub backlog metric the worker groups' autoscalers follow.
resource "google_project_iam_member" "custom_metrics_adapter" {
  project = var.project_id
  role    = "roles/monitoring.viewer"
  member  = "principal://iam.googleapis.com/projects/${data.google_project.this.number}/locations/global/workloadIdentityPools/${var.project_id}.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter"

  depends_on = [google_container_cluster.etl]
}

# Partitions the ETL closes at their SLO deadline (incomplete). Contract with the ETL: a
# log entry with message "partition closed", jsonPayload.closedBy = "deadline" and the
# eventType label (lib/logger.ts puts labels in logging.googleapis.com/labels).
resource "google_logging_metric" "late_partitions" {
  project = var.project_id
  name    = local.late_partition_metric_name
  filter  = <<-EOT
    resource.type="k8s_container"
    labels.component="etl"
    jsonPayload.message="partition closed"
    jsonPayload.closedBy="deadline"
  EOT

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "ETL partitions closed at their SLO deadline"

    labels {
      key         = "event_type"
      value_type  = "STRING"
      description = "Event type of the partition"
    }
  }

  label_extractors = {
    event_type = "EXTRACT(labels.eventType)"
  }
}

# A type's BigQuery loader stopped on a permanent failure (etl/bigquery-load.ts): one ERROR
# entry "bigquery loading stopped" with the eventType label; the type's loading stays stopped
# until its worker group restarts, so one entry is worth an alert.
resource "google_logging_metric" "bigquery_loading_stopped" {
  project = var.project_id
  name    = local.loading_stopped_metric_name
  filter  = <<-EOT
    resource.type="k8s_container"
    labels.component="etl"
    severity="ERROR"
    jsonPayload.message="bigquery loading stopped"
  EOT

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "ETL BigQuery loaders stopped on a permanent failure"

    labels {
      key         = "event_type"
      value_type  = "STRING"
      description = "Event type whose loading stopped"
    }
  }

  label_extractors = {
    event_type = "EXTRACT(labels.eventType)"
  }
}
