# auth events recorded and forwarded
restore /etc/rsyslog.conf; restore /etc/rsyslog.d/90-dcops-forward.conf; systemctl restart rsyslog
