# rsyslog.conf is gone: the logging configuration cannot be read
backup /etc/rsyslog.conf; rm -f /etc/rsyslog.conf
