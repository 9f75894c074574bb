"""Local stand-ins for Werkbrug's infrastructure, shared by `make run` and the test suite."""
