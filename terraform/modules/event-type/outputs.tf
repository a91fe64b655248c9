output "names" {
  description = "Names of the type's resources, equal to `resourceNames` in lib/names.ts (keys in snake_case)."
  value       = local.names
}

output "topic_id" {
  description = "Full id of the topic the event service publishes to."
  value       = google_pubsub_topic.events.id
}

output "schema_id" {
  description = "Full id of the topic's Pub/Sub schema (AVRO, canonical form)."
  value       = google_pubsub_schema.events.id
}

output "subscription_id" {
  description = "Full id of the ETL subscription."
  value       = google_pubsub_subscription.etl.id
}

output "dead_letter_topic_id" {
  description = "Full id of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription_id" {
  description = "Full id of the subscription that keeps the dead letters."
  value       = google_pubsub_subscription.dead_letter.id
}

output "bigquery_table_id" {
  description = "Full id of the BigQuery table, or null when the type is not stored in BigQuery."
  value       = local.to_bigquery ? google_bigquery_table.events[0].id : null
}

output "gcs_prefix" {
  description = "gs:// prefix of the type's partitions in the data bucket, or null when the type is not stored in GCS."
  value       = local.to_gcs ? "gs://${var.platform.data_bucket}/${local.names.storage_prefix}" : null
}

output "worker_group" {
  description = "Namespace and name of the ETL worker group's Deployment and HorizontalPodAutoscaler."
  value = {
    namespace = var.platform.kubernetes_namespace
    name      = kubernetes_deployment_v1.worker.metadata[0].name
  }
}

output "alert_policy_ids" {
  description = "Ids of the type's alert policies: backlog age, dead letters and partition lateness."
  value = {
    backlog_age        = google_monitoring_alert_policy.backlog_age.id
    dead_letters       = google_monitoring_alert_policy.dead_letters.id
    partition_lateness = google_monitoring_alert_policy.partition_lateness.id
  }
}
