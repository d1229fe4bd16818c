variable "project" {
  description = "The tf-release project (the `project` of tf-release.toml)."
  type        = string
}

variable "environment" {
  description = "The environment whose deployed images to read, e.g. \"stage\"."
  type        = string
}

variable "region" {
  description = "AWS region of the SSM parameters; null uses the AWS default chain."
  type        = string
  default     = null
}

variable "program" {
  description = "The command that runs tf-release-manifest (a list: program and arguments)."
  type        = list(string)
  default     = ["tf-release-manifest"]
}

variable "role_arn" {
  description = "The environment's role_arn from tf-release.toml, when its SSM parameters live in another account; null reads with Terraform's own credentials."
  type        = string
  default     = null
}
