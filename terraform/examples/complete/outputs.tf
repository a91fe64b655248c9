output "event_service_url" {
  description = "Where producers POST /v1/events."
  value       = module.platform.event_service_url
}

output "status_url" {
  description = "The partition status page (status_viewers only)."
  value       = module.platform.status_url
}

output "padlock_urls" {
  description = "Padlock's two deployment groups."
  value       = module.platform.padlock_urls
}

output "service_accounts" {
  description = "Service account email of each component."
  value       = module.platform.service_accounts
}

output "event_types" {
  description = "Resource names of each event type (equal to lib/names.ts resourceNames)."
  value       = { for name, m in module.event_type : name => m.names }
}

output "etl_cluster" {
  description = "The ETL cluster (name, location, endpoint, CA certificate): the workloads stage configures its kubernetes provider from this state output."
  value       = module.platform.etl_cluster
}

output "worker_group_platform" {
  description = "The worker-group module's `platform` input, read by the workloads stage."
  value       = module.platform.worker_group_platform
}
