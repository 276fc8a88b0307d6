# An image repository. The null provider stands in for AWS so the example applies offline.

variable "name" {
  type = string
}

variable "image_tag_mutability" {
  type    = string
  default = "MUTABLE"
}

variable "scan_on_push" {
  type    = bool
  default = false
}

locals {
  account_id      = "123456789012"
  repository_name = "${var.namespace}-${var.stage}-${var.name}"
}

resource "null_resource" "repository" {
  triggers = {
    name                 = local.repository_name
    image_tag_mutability = var.image_tag_mutability
    scan_on_push         = tostring(var.scan_on_push)
    tags                 = jsonencode(var.tags)
  }
}

output "repository_name" {
  value = local.repository_name
}

output "repository_url" {
  value = "${local.account_id}.dkr.ecr.${var.region}.amazonaws.com/${local.repository_name}"
}

output "repository_arn" {
  value = "arn:aws:ecr:${var.region}:${local.account_id}:repository/${local.repository_name}"
}
