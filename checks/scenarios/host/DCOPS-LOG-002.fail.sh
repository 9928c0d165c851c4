# rsyslog is stopped
systemctl stop syslog.socket rsyslog.service
