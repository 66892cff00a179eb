"""``pesaswitch doctor``: the go-live check, one pass/warn/fail line per check.

``runner.py`` runs the checks in order; each lives in ``daraja_checks.py``,
``url_checks.py``, ``local_checks.py`` or ``probe.py`` (with the route it probes).
"""
