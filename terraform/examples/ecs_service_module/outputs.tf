output "images" {
  description = "The image URL each task definition runs."
  value       = { for name in var.images : name => module.release.images[name] }
}

output "task_definition_arns" {
  description = "Task definition ARN per image."
  value       = { for name, definition in aws_ecs_task_definition.service : name => definition.arn }
}

output "release_version" {
  description = "The tf-release manifest version deployed."
  value       = module.release.version
}
