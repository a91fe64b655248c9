output "names" {
  description = "Names of the type's resources, equal to `resourceNames` in lib/names.ts (keys in snake_case)."
  value       = local.names
}

output "topic_id" {
  description = "Full id of the topic the event service publishes to (whoever owns it: see `platform.provisioning`)."
  value       = local.pubsub_ids.topic
}

output "schema_id" {
  description = "Full id of the topic's Pub/Sub schema (AVRO, canonical form)."
  value       = "projects/${var.project_id}/schemas/${local.names.topic_schema}"
}

output "subscription_id" {
  description = "Full id of the ETL subscription."
  value       = "projects/${var.project_id}/subscriptions/${local.names.etl_subscription}"
}

output "dead_letter_topic_id" {
  description = "Full id of the dead-letter topic."
  value       = local.pubsub_ids.dead_letter_topic
}

output "dead_letter_subscription_id" {
  description = "Full id of the subscription that keeps the dead letters."
  value       = "projects/${var.project_id}/subscriptions/${local.names.dead_letter_subscription}"
}

output "bigquery_table_id" {
  description = "Full id of the BigQuery table, or null when the type is not stored in BigQuery."
  value       = local.to_bigquery ? google_bigquery_table.events[0].id : null
}

output "gcs_prefix" {
  description = "gs:// prefix of the type's partitions in the data bucket, or null when the type is not stored in GCS."
  value       = local.to_gcs ? "gs://${var.platform.data_bucket}/${local.names.storage_prefix}" : null
}

output "alert_policy_ids" {
  description = "Ids of the type's alert policies by alert kind (backlog_age, dead_letters, partition_lateness, and bigquery_loading_stopped for a type stored in BigQuery)."
  value       = { for kind, p in google_monitoring_alert_policy.alert : kind => p.id }
}
