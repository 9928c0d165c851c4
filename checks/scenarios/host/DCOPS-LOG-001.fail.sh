# the forwarding to the central log server is removed
backup /etc/rsyslog.d/90-dcops-forward.conf; rm -f /etc/rsyslog.d/90-dcops-forward.conf; systemctl restart rsyslog
