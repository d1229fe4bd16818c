provider "aws" {
  region = var.region
}

# The module route: every image of the environment, and the manifest version, in one data
# source (tf-release-manifest through hashicorp/external).
module "release" {
  source      = "../../modules/release_manifest"
  project     = var.project
  environment = local.environment
  region      = var.region
}

locals {
  environment = coalesce(var.environment, terraform.workspace)
}

resource "aws_ecs_task_definition" "service" {
  for_each = toset(var.images)

  family = "${var.project}-${local.environment}-${each.key}"
  container_definitions = jsonencode([{
    name      = each.key
    image     = module.release.images[each.key]
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
