variable "project" {
  description = "The tf-release project."
  type        = string
  default     = "catalogue"
}

variable "environment" {
  description = "The environment this stack deploys; null: the Terraform workspace's name (tf-release selects `workspace` from tf-release.toml)."
  type        = string
  default     = null
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "images" {
  description = "The images (tf-release image names) that run as services in this stack."
  type        = list(string)
  default     = ["api", "worker"]
}

variable "cluster_arn" {
  description = "ECS cluster for the services; null registers the task definitions only."
  type        = string
  default     = null
}
