"""The serving benchmark (issue 5): model A behind modelhub, MLflow and MLServer; see run.py."""
