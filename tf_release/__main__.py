"""`python -m tf_release`: the tf-release command."""

from tf_release.faces.cli import main

main()
