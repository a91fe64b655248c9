output "event_type_platform" {
  description = "What every event type needs from the platform: pass it as the event-type module's `platform` input."
  value = {
    project_number                 = data.google_project.this.number
    labels                         = var.labels
    dataset_id                     = google_bigquery_dataset.events.dataset_id
    data_bucket                    = google_storage_bucket.data.name
    etl_service_account_email      = google_service_account.component["etl"].email
    etl_service_account_name       = google_service_account.component["etl"].name
    event_service_account_email    = google_service_account.component["event-service"].email
    composer_service_account_email = google_service_account.component["composer"].email
    status_service_account_email   = google_service_account.component["status"].email
    kubernetes_namespace           = var.etl.namespace
    provisioning                   = var.provisioning
    notification_channels          = var.alerting.notification_channels
    working_hours                  = var.alerting.working_hours
  }
}

output "worker_group_platform" {
  description = "What every ETL worker group needs from the platform: pass it as the worker-group module's `platform` input (the workloads root reads it from this state)."
  value = {
    labels                    = var.labels
    data_bucket               = google_storage_bucket.data.name
    staging_bucket            = google_storage_bucket.staging.name
    etl_service_account_email = google_service_account.component["etl"].email
    # Primary first: the ETL's padlock client fails over in this order.
    padlock_urls         = [google_cloud_run_v2_service.padlock["padlock"].uri, google_cloud_run_v2_service.padlock["padlock-mirror"].uri]
    etl_image            = var.etl.image
    kubernetes_namespace = var.etl.namespace
    # Where the ETL loads the types stored in BigQuery (its load jobs run in the dataset's location).
    bigquery_dataset  = google_bigquery_dataset.events.dataset_id
    bigquery_location = google_bigquery_dataset.events.location
  }
}

output "service_accounts" {
  description = "Email of each component's service account (event-service, etl, padlock, composer, status)."
  value       = { for k, v in google_service_account.component : k => v.email }
}

output "buckets" {
  description = "Names of the data bucket (partitions) and the staging bucket (staged parts, audit/ counts)."
  value = {
    data    = google_storage_bucket.data.name
    staging = google_storage_bucket.staging.name
  }
}

output "dataset_id" {
  description = "BigQuery dataset holding one table per event type."
  value       = google_bigquery_dataset.events.dataset_id
}

output "kms_key_id" {
  description = "Id of padlock's key-encryption key."
  value       = google_kms_crypto_key.padlock_kek.id
}

output "event_service_url" {
  description = "HTTPS URL of the event service (POST /v1/events)."
  value       = google_cloud_run_v2_service.event_service.uri
}

output "status_url" {
  description = "HTTPS URL of the partition status service (its pages and GET /v1/partitions); only `status.viewer_members` may open it."
  value       = google_cloud_run_v2_service.status.uri
}

output "padlock_urls" {
  description = "URLs of padlock's deployment groups, by group name (padlock, padlock-mirror)."
  value       = { for k, v in google_cloud_run_v2_service.padlock : k => v.uri }
}

output "padlock_max_instances" {
  description = "Max instances of EACH padlock deployment group: sized for all traffic."
  value       = local.padlock_max_instances
}

output "key_store" {
  description = "Bigtable instance, table and app profile of padlock's key store."
  value = {
    instance = google_bigtable_instance.keys.name
    table    = google_bigtable_table.keychains.name
    app_profiles = {
      padlock          = google_bigtable_app_profile.padlock.app_profile_id
      "padlock-mirror" = google_bigtable_app_profile.padlock_mirror.app_profile_id
    }
  }
}

output "registry_database" {
  description = "Firestore database (Native mode) of the composer's registry."
  value       = google_firestore_database.registry.name
}

output "etl_cluster" {
  description = "The ETL's GKE Autopilot cluster, to configure the kubernetes provider. `ca_certificate` is base64-encoded."
  value = {
    name           = google_container_cluster.etl.name
    location       = google_container_cluster.etl.location
    endpoint       = google_container_cluster.etl.endpoint
    ca_certificate = google_container_cluster.etl.master_auth[0].cluster_ca_certificate
  }
}

output "gke_node_service_account" {
  description = "Email of the ETL cluster's node service account (pulls images, writes logs and metrics)."
  value       = google_service_account.gke_nodes.email
}

output "etl_namespace" {
  description = "Kubernetes namespace the ETL worker groups run in (the workloads root creates it)."
  value       = var.etl.namespace
}
