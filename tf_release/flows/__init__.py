"""The flows: what tf-release decides. Publishing, preparing and rolling back (release.py), the
deploy transaction and `unlock` (deploy.py), the gates that decide a deploy succeeded
(gates.py), the release rules applied (holds.py), `repair`, the read-only views, and drift.
They work on the `Stores` bundle and the Terraform runner, and may import the model, the
stores and the Terraform layer, never the faces.
"""
