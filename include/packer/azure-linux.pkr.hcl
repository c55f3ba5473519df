# Golden Linux image on Azure: boot the source image, run the image's provisioning script,
# generalize, capture a managed image and publish it as a Compute Gallery image version.
# Valid for Packer 1.6.6 (Debian) and newer releases alike: no required_plugins block.
# bakery writes every variable below to a var-file; credentials come from the environment
# (ARM_* variables, never the command line or the var-file). Empty client credentials make
# Packer use the worker's managed identity.

variable "client_id" {
  type    = string
  default = env("ARM_CLIENT_ID")
}

variable "client_secret" {
  type    = string
  default = env("ARM_CLIENT_SECRET")
}

variable "tenant_id" {
  type    = string
  default = env("ARM_TENANT_ID")
}

variable "subscription_id" {
  type    = string
  default = env("ARM_SUBSCRIPTION_ID")
}

variable "location" {
  type = string
}

variable "resource_group" {
  type        = string
  description = "Holds the gallery, and the managed image Packer captures."
}

variable "gallery" {
  type = string
}

variable "image_definition" {
  type = string
}

variable "image_version" {
  type        = string
  description = "Major.Minor.Patch, chosen by bakery (e.g. 2026.1126.84344)."
}

variable "managed_image_name" {
  type = string
}

variable "replication_regions" {
  type = list(string)
}

variable "vm_size" {
  type    = string
  default = "Standard_B1s"
}

variable "ssh_username" {
  type    = string
  default = "azureuser"
}

# The source: a Marketplace image (publisher, offer, sku) or a managed image (name and
# resource group). bakery fills exactly one of the two.
variable "source_publisher" {
  type    = string
  default = ""
}

variable "source_offer" {
  type    = string
  default = ""
}

variable "source_sku" {
  type    = string
  default = ""
}

variable "source_image_name" {
  type    = string
  default = ""
}

variable "source_image_resource_group" {
  type    = string
  default = ""
}

variable "virtual_network_resource_group" {
  type    = string
  default = ""
}

variable "virtual_network_name" {
  type    = string
  default = ""
}

variable "virtual_network_subnet_name" {
  type    = string
  default = ""
}

variable "provision_script" {
  type        = string
  description = "Absolute path of the image's provisioning script (from the catalog)."
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
  type    = map(string)
  default = {}
}

source "azure-arm" "golden" {
  client_id       = var.client_id
  client_secret   = var.client_secret
  tenant_id       = var.tenant_id
  subscription_id = var.subscription_id

  location = var.location
  vm_size  = var.vm_size
  os_type  = "Linux"

  image_publisher                          = var.source_publisher
  image_offer                              = var.source_offer
  image_sku                                = var.source_sku
  custom_managed_image_name                = var.source_image_name
  custom_managed_image_resource_group_name = var.source_image_resource_group

  virtual_network_resource_group_name = var.virtual_network_resource_group
  virtual_network_name                = var.virtual_network_name
  virtual_network_subnet_name         = var.virtual_network_subnet_name

  managed_image_name                = var.managed_image_name
  managed_image_resource_group_name = var.resource_group

  shared_image_gallery_destination {
    subscription        = var.subscription_id
    resource_group      = var.resource_group
    gallery_name        = var.gallery
    image_name          = var.image_definition
    image_version       = var.image_version
    replication_regions = var.replication_regions
  }
  shared_image_gallery_timeout = "90m"

  azure_tags   = var.tags
  communicator = "ssh"
  ssh_username = var.ssh_username
}

build {
  sources = ["source.azure-arm.golden"]

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

  # Generalize, as Azure requires of an image that new VMs are provisioned from.
  provisioner "shell" {
    inline          = ["if command -v waagent >/dev/null; then waagent -force -deprovision+user; fi", "sync"]
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh '{{ .Path }}'"
  }

  post-processor "manifest" {
    output     = var.manifest_path
    strip_path = true
  }
}
