# The Custom Metrics Stackdriver Adapter: serves Cloud Monitoring metrics (here the Pub/Sub
# backlog, num_undelivered_messages) to HorizontalPodAutoscalers as External metrics. The
# resources of Google's adapter manifest for the new resource model, pinned to one image
# (never a moving branch). It reads Cloud Monitoring as the Kubernetes service account
# custom-metrics/custom-metrics-stackdriver-adapter, which the platform module grants
# monitoring.viewer through Workload Identity.

locals {
  name      = "custom-metrics-stackdriver-adapter"
  namespace = "custom-metrics"
  labels = {
    run       = local.name
    "k8s-app" = local.name
  }
}

resource "kubernetes_namespace_v1" "adapter" {
  metadata {
    name = local.namespace
  }
}

resource "kubernetes_service_account_v1" "adapter" {
  metadata {
    name      = local.name
    namespace = kubernetes_namespace_v1.adapter.metadata[0].name
  }
}

resource "kubernetes_cluster_role_binding_v1" "auth_delegator" {
  metadata {
    name = "custom-metrics:system:auth-delegator"
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "ClusterRole"
    name      = "system:auth-delegator"
  }
  subject {
    kind      = "ServiceAccount"
    name      = local.name
    namespace = local.namespace
  }
}

resource "kubernetes_role_binding_v1" "auth_reader" {
  metadata {
    name      = "custom-metrics-auth-reader"
    namespace = "kube-system"
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = "extension-apiserver-authentication-reader"
  }
  subject {
    kind      = "ServiceAccount"
    name      = local.name
    namespace = local.namespace
  }
}

resource "kubernetes_cluster_role_v1" "resource_reader" {
  metadata {
    name = "custom-metrics-resource-reader"
  }
  rule {
    api_groups = [""]
    resources  = ["pods", "nodes", "nodes/stats"]
    verbs      = ["get", "list", "watch"]
  }
}

resource "kubernetes_cluster_role_binding_v1" "resource_reader" {
  metadata {
    name = "custom-metrics-resource-reader"
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "ClusterRole"
    name      = kubernetes_cluster_role_v1.resource_reader.metadata[0].name
  }
  subject {
    kind      = "ServiceAccount"
    name      = local.name
    namespace = local.namespace
  }
}

resource "kubernetes_deployment_v1" "adapter" {
  metadata {
    name      = local.name
    namespace = kubernetes_namespace_v1.adapter.metadata[0].name
    labels    = local.labels
  }

  spec {
    replicas = 1
    selector {
      match_labels = local.labels
    }
    template {
      metadata {
        labels = merge(local.labels, { "kubernetes.io/cluster-service" = "true" })
      }
      spec {
        service_account_name = kubernetes_service_account_v1.adapter.metadata[0].name
        container {
          name    = "pod-custom-metrics-stackdriver-adapter"
          image   = var.image
          command = ["/adapter", "--use-new-resource-model=true", "--fallback-for-container-metrics=true"]
          resources {
            requests = {
              cpu    = "250m"
              memory = "400Mi"
            }
            limits = {
              cpu    = "250m"
              memory = "400Mi"
            }
          }
        }
      }
    }
  }
}

resource "kubernetes_service_v1" "adapter" {
  metadata {
    name      = local.name
    namespace = kubernetes_namespace_v1.adapter.metadata[0].name
    labels    = merge(local.labels, { "kubernetes.io/cluster-service" = "true", "kubernetes.io/name" = "Adapter" })
  }
  spec {
    type     = "ClusterIP"
    selector = local.labels
    port {
      port        = 443
      protocol    = "TCP"
      target_port = 443
    }
  }
}

resource "kubernetes_api_service_v1" "metrics" {
  for_each = {
    "v1beta1.custom.metrics.k8s.io"   = { group = "custom.metrics.k8s.io", version = "v1beta1", priority = 100 }
    "v1beta2.custom.metrics.k8s.io"   = { group = "custom.metrics.k8s.io", version = "v1beta2", priority = 200 }
    "v1beta1.external.metrics.k8s.io" = { group = "external.metrics.k8s.io", version = "v1beta1", priority = 100 }
  }

  metadata {
    name = each.key
  }
  spec {
    group                    = each.value.group
    version                  = each.value.version
    group_priority_minimum   = 100
    version_priority         = each.value.priority
    insecure_skip_tls_verify = true
    service {
      name      = kubernetes_service_v1.adapter.metadata[0].name
      namespace = local.namespace
    }
  }
}

# The HorizontalPodAutoscaler controller reads External metrics through the adapter.
resource "kubernetes_cluster_role_v1" "external_metrics_reader" {
  metadata {
    name = "external-metrics-reader"
  }
  rule {
    api_groups = ["external.metrics.k8s.io"]
    resources  = ["*"]
    verbs      = ["list", "get", "watch"]
  }
}

resource "kubernetes_cluster_role_binding_v1" "external_metrics_reader" {
  metadata {
    name = "external-metrics-reader"
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "ClusterRole"
    name      = kubernetes_cluster_role_v1.external_metrics_reader.metadata[0].name
  }
  subject {
    kind      = "ServiceAccount"
    name      = "horizontal-pod-autoscaler"
    namespace = "kube-system"
  }
}
