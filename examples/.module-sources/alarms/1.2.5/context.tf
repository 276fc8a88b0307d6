# The naming context every component of this repository receives from the stacks.
variable "namespace" {
  type = string
}

variable "tenant" {
  type = string
}

variable "environment" {
  type = string
}

variable "stage" {
  type = string
}

variable "region" {
  type = string
}

variable "tags" {
  type    = map(string)
  default = {}
}

terraform {
  required_version = ">= 1.0"
  required_providers {
    null = {
      source = "hashicorp/null"
    }
  }
}
