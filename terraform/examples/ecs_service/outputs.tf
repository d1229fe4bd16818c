output "images" {
  description = "The image URL each task definition runs."
  value       = local.image_urls
}

output "task_definition_arns" {
  description = "Task definition ARN per image."
  value       = { for name, definition in aws_ecs_task_definition.service : name => definition.arn }
}
