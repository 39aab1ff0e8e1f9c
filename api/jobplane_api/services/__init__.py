"""Services: the API's logic between routes and stores (Postgres, Kubernetes); they raise domain errors."""
