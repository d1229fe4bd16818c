terraform {
  required_version = ">= 1.6, < 1.16"

  required_providers {
    external = {
      source  = "hashicorp/external"
      version = ">= 2.0"
    }
  }
}
