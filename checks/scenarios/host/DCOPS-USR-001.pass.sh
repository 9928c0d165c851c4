# only root, the service accounts (dcops, dcops-audit) and the named administrators can log in
userdel -r scenario-intruder 2>/dev/null || true
