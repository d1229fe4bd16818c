# Terraform runs tf-release-manifest on every plan; it reads the environment's image pointers
# from SSM (/{project}/image_ids/{environment}/*) and the version tf-release deployed there.
data "external" "release" {
  program = var.program

  query = merge(
    { project = var.project, environment = var.environment },
    var.region == null ? {} : { region = var.region },
    var.role_arn == null ? {} : { role_arn = var.role_arn },
  )
}

locals {
  result = data.external.release.result
  images = { for name, url in local.result : name => url if name != "_version" }
}
