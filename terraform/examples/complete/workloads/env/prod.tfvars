project_id = "acme-events-prod"
region     = "europe-west1"

platform_state = {
  bucket = "acme-events-prod-tfstate"
  prefix = "event-platform"
}

worker_overrides = {
  # Peak hour of about a million page views: closing it needs an 800 MB heap (worker-group README).
  page_view = { min_replicas = 2, max_replicas = 40, heap_mb = 800, memory = "1Gi" }
}
