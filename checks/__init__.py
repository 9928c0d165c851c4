"""dcops compliance and SLA checks.

- ``catalog.yaml``: the control catalog (data): ids, titles (vi/en), rationale,
  severity, what each control applies to, levels, evidence, references to
  TCVN 11930:2017, TCVN 14423:2025, Decree 85/2016, Circular 12/2022, CIS and NIST SP 800-53.
- ``catalog.py``: loads and validates the catalog.
- ``result.py``: the one result schema every control produces.
- ``controls/``: the code of each control, registered under its id.
- ``scenarios/``: a passing and a failing scenario per control.
"""
