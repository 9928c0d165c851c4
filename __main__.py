"""Pulumi's entry point (Pulumi.yaml runs the project directory): the program is infra/program.py.

It sits at the project root so that Pulumi runs the program, and its Python
dynamic-provider plugin, from the root, where `virtualenv: .venv` resolves.
"""

from infra.program import main

main()
