output "service_account" {
  description = "Namespace/name of the adapter's Kubernetes service account (the platform module grants it monitoring.viewer through Workload Identity)."
  value       = "${local.namespace}/${kubernetes_service_account_v1.adapter.metadata[0].name}"
}
