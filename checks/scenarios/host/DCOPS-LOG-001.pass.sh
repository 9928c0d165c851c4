# the rolled-out forwarding
restore /etc/rsyslog.d/90-dcops-forward.conf; systemctl restart rsyslog
