"""What the two HTTP faces share, the API server (api/) and each replica's data plane
(serving/dataplane/): the error-code to HTTP-status table and the proxy rule. Kept free
of FastAPI so a replica imports it cheaply."""
