"""`make lint`'s dependency audit: pip-audit over the installed environment.

Fails on any known vulnerability. A dependency pip-audit could not look up (its service
unreachable, or answering 404 for the package's version) is listed and counted, never
silently taken as clean; with PESASWITCH_AUDIT_STRICT=1 an incomplete audit fails too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    pip_audit = Path(sys.executable).parent / "pip-audit"
    run = subprocess.run(  # noqa: S603 - a fixed command line, no user input
        [str(pip_audit), "--progress-spinner", "off", "--skip-editable", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    strict = os.environ.get("PESASWITCH_AUDIT_STRICT") == "1"
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        # Typically the vulnerability service cannot be reached at all.
        last = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
        print(f"pip-audit: NOT AUDITED, no report (exit {run.returncode}): {last}")
        return 1 if strict else 0
    deps = report["dependencies"]
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = len(deps) - len(skipped)
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions", [])) or "none"
            print(f"VULNERABLE {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
    print(f"pip-audit: {audited} of {len(deps)} dependencies audited, {len(vulnerable)} vulnerable")
    if skipped:
        print(f"pip-audit: NOT AUDITED ({len(skipped)}), e.g. {skipped[0]['skip_reason']}")
        print("  (pip-audit asks PyPI's JSON API for /pypi/<name>/<version>/json; see")
        print("  docs/security-testing.md for what that means for this result)")
    if vulnerable:
        return 1
    if skipped and strict:
        print("pip-audit: PESASWITCH_AUDIT_STRICT=1 and the audit is incomplete")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
