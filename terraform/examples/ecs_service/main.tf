provider "aws" {
  region = var.region
}

# The SSM route: one SSM data source per image. Needs only the aws provider. Image URLs are not
# secret: `insecure_value` keeps them out of Terraform's sensitive-value handling.
data "aws_ssm_parameter" "image" {
  for_each = toset(var.images)
  name     = "/${var.project}/image_ids/${local.environment}/${each.key}"
}

locals {
  environment = coalesce(var.environment, terraform.workspace)
  image_urls  = { for name, parameter in data.aws_ssm_parameter.image : name => parameter.insecure_value }
}

resource "aws_ecs_task_definition" "service" {
  for_each = toset(var.images)

  family = "${var.project}-${local.environment}-${each.key}"
  container_definitions = jsonencode([{
    name      = each.key
    image     = local.image_urls[each.key]
    essential = true
    memory    = 256
  }])
}

resource "aws_ecs_service" "service" {
  for_each = var.cluster_arn == null ? toset([]) : toset(var.images)

  name            = "${var.project}-${local.environment}-${each.key}"
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.service[each.key].arn
  desired_count   = 1
}
