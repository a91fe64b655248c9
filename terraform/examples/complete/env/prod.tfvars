project_id  = "acme-events-prod"
region      = "europe-west1"
environment = "prod"

images = {
  event_service = "europe-west1-docker.pkg.dev/acme-events-prod/platform/event-service:1.0.0"
  padlock       = "europe-west1-docker.pkg.dev/acme-events-prod/platform/padlock:1.0.0"
  etl           = "europe-west1-docker.pkg.dev/acme-events-prod/platform/etl:1.0.0"
  status        = "europe-west1-docker.pkg.dev/acme-events-prod/platform/status:1.0.0"
}

padlock = {
  mirror_region             = "europe-west4"
  peak_requests_per_second  = 4000
  service_secrets_secret_id = "padlock-service-secrets"
}

event_service_invokers = ["group:event-producers@acme.example"]

# Who may open the partition status page.
status_viewers = ["group:events-team@acme.example"]

# The composer runs with COMPOSER_PROVISIONING=terraform: this configuration owns the
# per-type Pub/Sub resources.
provisioning = "terraform"

alert_emails = {
  high   = ["events-oncall@acme.example"]
  normal = ["events-team@acme.example"]
  low    = ["events-team@acme.example"]
}
