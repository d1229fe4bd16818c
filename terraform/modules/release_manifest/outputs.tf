output "images" {
  description = "Image name → full image URL, as deployed to the environment by tf-release."
  value       = local.images
}

output "version" {
  description = "The release manifest version (\"v7\") whose images these are; empty if unknown."
  value       = local.result["_version"]
}
