"""bakery: keeps golden VM images fresh with Packer, orchestrated by Airflow."""
