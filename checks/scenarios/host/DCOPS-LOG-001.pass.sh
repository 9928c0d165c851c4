# the rolled-out forwarding (and rsyslog.conf, restored after the unreadable scenario)
restore /etc/rsyslog.conf; restore /etc/rsyslog.d/90-dcops-forward.conf; systemctl restart rsyslog
