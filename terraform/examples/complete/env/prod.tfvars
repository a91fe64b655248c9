project_id  = "acme-events-prod"
region      = "europe-west1"
environment = "prod"

images = {
  event_service = "europe-west1-docker.pkg.dev/acme-events-prod/platform/event-service:1.0.0"
  padlock       = "europe-west1-docker.pkg.dev/acme-events-prod/platform/padlock:1.0.0"
  etl           = "europe-west1-docker.pkg.dev/acme-events-prod/platform/etl:1.0.0"
}

padlock = {
  mirror_region             = "europe-west4"
  peak_requests_per_second  = 4000
  service_secrets_secret_id = "padlock-service-secrets"
}

event_service_invokers = ["group:event-producers@acme.example"]

notification_channels = {
  high   = ["projects/acme-events-prod/notificationChannels/1111111111111111111"]
  normal = ["projects/acme-events-prod/notificationChannels/2222222222222222222"]
  low    = ["projects/acme-events-prod/notificationChannels/2222222222222222222"]
}

worker_overrides = {
  # Peak hour of about a million page views: closing it needs an 800 MB heap (event-type README).
  page_view = { min_replicas = 2, max_replicas = 40, heap_mb = 800, memory = "1Gi" }
}
