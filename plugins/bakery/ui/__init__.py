"""bakery's page in the Airflow UI: the freshness of every image x cloud x region."""
