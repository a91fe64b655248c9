output "event_service_url" {
  description = "Where producers POST /v1/events."
  value       = module.platform.event_service_url
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
