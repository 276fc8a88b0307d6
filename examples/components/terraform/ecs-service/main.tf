# An ECS service running the task definition with the target's replica count.

variable "service_name" {
  type = string
}

variable "cluster_name" {
  type = string
}

variable "task_definition_arn" {
  type = string
}

variable "replicas" {
  type = number
}

variable "deployment_minimum_healthy_percent" {
  type    = number
  default = 50
}

locals {
  cluster_arn = "arn:aws:ecs:${var.region}:123456789012:cluster/${var.cluster_name}"
}

resource "null_resource" "service" {
  triggers = {
    service             = "${var.namespace}-${var.stage}-${var.service_name}"
    cluster             = local.cluster_arn
    task_definition_arn = var.task_definition_arn
    desired_count       = tostring(var.replicas)
    min_healthy         = tostring(var.deployment_minimum_healthy_percent)
  }
}

output "service_name" {
  value = "${var.namespace}-${var.stage}-${var.service_name}"
}

output "cluster_arn" {
  value = local.cluster_arn
}

output "task_definition_arn" {
  value = var.task_definition_arn
}

output "desired_count" {
  value = var.replicas
}
