"""Pure builders: a typed spec (and a Config) in, plain Kubernetes manifest dicts out."""
