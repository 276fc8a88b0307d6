# CloudWatch-style alarms for a service (version 1.3.0: adds a memory alarm and evaluation periods,
# and makes each alarm a call of the submodule in modules/alarm).
# The null provider stands in for AWS.

variable "service_name" {
  type = string
}

variable "replicas" {
  type        = number
  description = "Expected running tasks: the alarm fires below this."
}

variable "cpu_threshold" {
  type    = number
  default = 80
}

variable "memory_threshold" {
  type    = number
  default = 85
}

variable "evaluation_periods" {
  type    = number
  default = 3
}

locals {
  alarms = {
    cpu     = "${var.service_name}-cpu-above-${var.cpu_threshold}-for-${var.evaluation_periods}"
    memory  = "${var.service_name}-memory-above-${var.memory_threshold}-for-${var.evaluation_periods}"
    running = "${var.service_name}-running-below-${var.replicas}"
  }
}

module "alarm" {
  source   = "./modules/alarm"
  for_each = local.alarms
  name     = each.value
}

output "alarm_names" {
  value = sort([for alarm in module.alarm : alarm.name])
}

output "module_version" {
  value = "1.3.0"
}
