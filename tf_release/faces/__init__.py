"""The faces: what people and programs touch. The tf-release command (cli/), the Terraform
external data program tf-release-manifest (external.py), doctor, the release board, CI
summaries, tables and the terminal spinner. They parse and print; the flows decide. They may
import every other layer, and nothing imports them.
"""
