"""A local ARM-shaped HTTPS server: the Azure compute routes bakery's adapter uses.

Nothing installable emulates Azure Resource Manager compute, so the sandbox serves the
few routes it needs (Compute Gallery image versions, managed images, VMs and scale sets,
the NICs, public IPs and disks VMs own, long-running operations and a token endpoint)
with Azure's response shapes, status codes, error bodies and Azure-AsyncOperation
protocol. State persists in the sandbox's state dir until a resource is deleted.
"""
