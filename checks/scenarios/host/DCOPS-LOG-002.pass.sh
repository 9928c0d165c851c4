# rsyslog runs
systemctl start rsyslog.service; for i in $(seq 1 40); do pgrep -x rsyslogd >/dev/null && exit 0; sleep 0.25; done; exit 1
