output "worker_groups" {
  description = "Namespace and name of each event type's ETL worker group."
  value       = { for name, m in module.worker_group : name => m.worker_group }
}
