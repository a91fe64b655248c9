bucket = "acme-events-prod-tfstate"
prefix = "event-platform-workloads"
