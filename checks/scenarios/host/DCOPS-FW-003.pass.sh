# no extra listener
systemctl stop dcops-scenario-listener 2>/dev/null || true; systemctl reset-failed dcops-scenario-listener 2>/dev/null || true
