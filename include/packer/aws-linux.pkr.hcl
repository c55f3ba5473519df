# Golden Linux AMI: boot the source image, run the image's provisioning script, capture.
# Valid for Packer 1.6.6 (Debian) and newer releases alike: no required_plugins block.
# bakery passes every variable through a var-file or PKR_VAR_* environment variables.

variable "region" {
  type = string
}

variable "ami_name" {
  type = string
}

variable "source_ami_id" {
  type        = string
  description = "Resolved by bakery from the catalog's source filter, so it is also tagged."
}

variable "instance_type" {
  type    = string
  default = "t3.micro"
}

variable "ssh_username" {
  type    = string
  default = "admin"
}

variable "ssh_interface" {
  type    = string
  default = "private_ip"
}

variable "subnet_id" {
  type    = string
  default = ""
}

variable "volume_size_gb" {
  type    = number
  default = 8
}

variable "ec2_endpoint" {
  type        = string
  default     = ""
  description = "Custom EC2 API endpoint; empty means AWS itself."
}

variable "provision_script" {
  type = string
}

variable "cleanup_script" {
  type        = string
  description = "Runs last: removes the builder's key, host keys, histories, machine-id, cloud-init state."
}

variable "secret_env" {
  type        = map(string)
  default     = {}
  sensitive   = true
  description = "Secrets the provisioner reads from its environment; set only through PKR_VAR_secret_env."
}

variable "manifest_path" {
  type = string
}

variable "tags" {
  type        = map(string)
  description = "bakery's tags: image, bake id, source image, template hash, DAG run id."
}

source "amazon-ebs" "golden" {
  region                      = var.region
  custom_endpoint_ec2         = var.ec2_endpoint
  skip_region_validation      = var.ec2_endpoint != ""
  skip_metadata_api_check     = true
  ami_name                    = var.ami_name
  source_ami                  = var.source_ami_id
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  associate_public_ip_address = var.ssh_interface == "public_ip"
  ssh_username                = var.ssh_username
  ssh_interface               = var.ssh_interface
  ssh_timeout                 = "10m"

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.volume_size_gb
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    delete_on_termination = true
  }

  tags          = merge(var.tags, { Name = var.ami_name })
  snapshot_tags = var.tags
  run_tags      = merge(var.tags, { Name = "bakery-builder ${var.ami_name}", "bakery:role" = "builder" })
  run_volume_tags = var.tags
}

build {
  sources = ["source.amazon-ebs.golden"]

  provisioner "shell" {
    script           = var.provision_script
    environment_vars = [for name, value in var.secret_env : "${name}=${value}"]
    # Secrets travel in an uploaded file that the command sources, not on its command line.
    use_env_var_file = true
    execute_command  = "chmod +x {{ .Path }}; . {{ .EnvVarFile }} && rm -f {{ .EnvVarFile }} && sudo -E sh -eu '{{ .Path }}'"
  }

  provisioner "shell" {
    script          = var.cleanup_script
    execute_command = "chmod +x {{ .Path }}; sudo sh -eu '{{ .Path }}'"
  }

  post-processor "manifest" {
    output     = var.manifest_path
    strip_path = true
  }
}
