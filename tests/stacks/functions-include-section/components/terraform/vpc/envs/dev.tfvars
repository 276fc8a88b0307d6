cidr_block  = "10.0.0.0/16"
environment = "dev"
tags = {
  team = "net"
}
