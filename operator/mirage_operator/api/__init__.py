"""Typed models of the Mirage kinds, and the validator shared by the operator and the CLI."""
