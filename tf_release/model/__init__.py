"""The model: what a release is, with no AWS, no Terraform and no terminal in it.

Manifests, deployment records and the environment state (and the indexes beside them), the
names and keys everything is stored under, the config, the release rules, the errors every
layer raises, the clock, the operator's files, and the JSON Schemas of what is stored. It
imports nothing else of tf_release: every other layer may import it.
"""
