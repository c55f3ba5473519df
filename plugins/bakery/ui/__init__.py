"""bakery's page in the Airflow UI: the freshness of every image x cloud x region."""

# Where the API server mounts the page's app (bakery_ui_plugin.py).
URL_PREFIX = "/bakery"
