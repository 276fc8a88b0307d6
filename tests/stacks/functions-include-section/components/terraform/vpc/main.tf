variable "cidr_block" {}
