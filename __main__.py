"""Pulumi's entry point (Pulumi.yaml runs the project directory): the program is infra/program.py.

It sits at the project root so that Pulumi runs the program from the root, where
`virtualenv: .venv` resolves. Kubernetes objects are pulumi-kubernetes resources (the provider
plugin scripts/install-tools builds); where dcops connects comes from the stack's environment.
"""

from infra.program import main

main()
