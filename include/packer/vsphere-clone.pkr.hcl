# Golden vSphere template: clone the base template, run the image's provisioning script
# over SSH, shut down and convert the VM into a template named for this bake (re-bakes
# never collide, nothing is overwritten with -force).
# Valid for Packer 1.6.6 (Debian, vsphere-clone built in) and newer releases alike.
# bakery passes the vCenter password as PKR_VAR_vsphere_password (environment only) and
# everything else through a var-file; the SSH key is a one-off pair made per bake.

variable "vcenter_server" {
  type        = string
  description = "vCenter host, or host:port."
}

variable "vsphere_username" {
  type = string
}

variable "vsphere_password" {
  type      = string
  sensitive = true
}

variable "insecure_connection" {
  type    = bool
  default = false
}

variable "datacenter" {
  type = string
}

variable "cluster" {
  type = string
}

variable "host" {
  type    = string
  default = ""
}

variable "resource_pool" {
  type    = string
  default = ""
}

variable "datastore" {
  type = string
}

variable "folder" {
  type    = string
  default = ""
}

variable "network" {
  type    = string
  default = ""
}

variable "source_template" {
  type        = string
  description = "The base template (name or path under the datacenter's VM folder)."
}

variable "vm_name" {
  type        = string
  description = "The new template's name: unique per bake."
}

variable "cpus" {
  type    = number
  default = 1
}

variable "memory_mb" {
  type    = number
  default = 1024
}

variable "notes" {
  type        = string
  description = "bakery's bake-time tags for people, one key=value a line."
}

variable "tags_json" {
  type        = string
  description = "bakery's bake-time tags as JSON, kept in the advanced setting bakery.tags (Packer 1.6.6 cannot set custom attributes)."
}

variable "guestinfo_userdata" {
  type        = string
  description = "cloud-config for cloud-init's VMware datasource (base64): the build's one-off SSH key."
}

variable "ssh_username" {
  type    = string
  default = "admin"
}

variable "ssh_private_key_file" {
  type = string
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

source "vsphere-clone" "golden" {
  vcenter_server      = var.vcenter_server
  username            = var.vsphere_username
  password            = var.vsphere_password
  insecure_connection = var.insecure_connection

  datacenter    = var.datacenter
  cluster       = var.cluster
  host          = var.host
  resource_pool = var.resource_pool
  datastore     = var.datastore
  folder        = var.folder
  network       = var.network
  template      = var.source_template
  vm_name       = var.vm_name
  notes         = var.notes
  CPUs          = var.cpus
  RAM           = var.memory_mb

  configuration_parameters = {
    "guestinfo.userdata"          = var.guestinfo_userdata
    "guestinfo.userdata.encoding" = "base64"
    "bakery.tags"                 = var.tags_json
  }

  ip_wait_timeout   = "10m"
  ip_settle_timeout = "2s"

  communicator         = "ssh"
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "10m"

  convert_to_template = true
}

build {
  sources = ["source.vsphere-clone.golden"]

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
