# no extra listener (and the real ss, restored after the unreadable scenario)
restore /usr/bin/ss; systemctl stop dcops-scenario-listener 2>/dev/null || true; systemctl reset-failed dcops-scenario-listener 2>/dev/null || true
