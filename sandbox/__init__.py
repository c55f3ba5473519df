"""Local sandbox cloud: a moto server as the AWS API plus stand-in VMs on 127.0.0.0/8.

Nothing under dags/ or plugins/ imports this package: production code reaches the
sandbox only through connection settings (endpoint URL, subnet tags, SSH settings).
"""
