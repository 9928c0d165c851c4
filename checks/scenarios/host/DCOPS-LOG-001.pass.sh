# the rolled-out forwarding or receiving (and rsyslog.conf, restored after the unreadable scenario)
restore /etc/rsyslog.conf; restore /etc/rsyslog.d/90-dcops-forward.conf; restore /etc/rsyslog.d/10-dcops-receive.conf; systemctl restart rsyslog
