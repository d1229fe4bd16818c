"""tf-release: versioned release manifests for Docker images deployed with Terraform."""

__version__ = "0.1.0"
