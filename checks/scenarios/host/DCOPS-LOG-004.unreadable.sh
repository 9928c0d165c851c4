# logrotate.conf is gone: the log server's rotation cannot be read
backup /etc/logrotate.conf; rm -f /etc/logrotate.conf
