variable "image" {
  description = "The adapter image, pinned to a release you have reviewed."
  type        = string
  default     = "gcr.io/gke-release/custom-metrics-stackdriver-adapter:v0.15.1-gke.0"
}
