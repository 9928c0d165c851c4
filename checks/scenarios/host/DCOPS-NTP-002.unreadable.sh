# chrony.conf is gone: the time sources cannot be read
backup /etc/chrony/chrony.conf; rm -f /etc/chrony/chrony.conf
