"""sparkfleet's module logic, shared by the Ansible modules in plugins/modules and the CLIs.

Rules for this package: standard library only (it runs on lab hosts with the system
Python), relative imports inside the package, typed, unit-tested in tests/unit.
"""
