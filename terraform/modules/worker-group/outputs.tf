output "worker_group" {
  description = "Namespace and name of the ETL worker group's Deployment and HorizontalPodAutoscaler."
  value = {
    namespace = var.platform.kubernetes_namespace
    name      = kubernetes_deployment_v1.worker.metadata[0].name
  }
}
