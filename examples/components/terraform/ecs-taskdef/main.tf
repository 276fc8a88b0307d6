# A task definition: a new revision whenever any of its inputs changes.

variable "family" {
  type = string
}

variable "image" {
  type = string
}

variable "cpu" {
  type = number
}

variable "memory" {
  type = number
}

variable "container_port" {
  type = number
}

variable "log_retention_days" {
  type = number
}

locals {
  definition = {
    family             = "${var.namespace}-${var.stage}-${var.family}"
    image              = var.image
    cpu                = var.cpu
    memory             = var.memory
    container_port     = var.container_port
    log_retention_days = var.log_retention_days
  }
  revision = substr(sha256(jsonencode(local.definition)), 0, 12)
}

resource "null_resource" "task_definition" {
  triggers = {
    definition = jsonencode(local.definition)
  }
}

output "task_definition_arn" {
  value = "arn:aws:ecs:${var.region}:123456789012:task-definition/${local.definition.family}:${local.revision}"
}

output "image" {
  value = var.image
}

output "cpu" {
  value = var.cpu
}

output "memory" {
  value = var.memory
}
