# One alarm (version 1.3.0 moved it into this submodule). The null provider stands in for AWS.

variable "name" {
  type = string
}

terraform {
  required_providers {
    null = {
      source = "hashicorp/null"
    }
  }
}

resource "null_resource" "alarm" {
  triggers = {
    name = var.name
  }
}

output "name" {
  value = var.name
}
