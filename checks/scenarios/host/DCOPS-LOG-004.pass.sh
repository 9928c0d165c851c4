# the rolled-out rotation of the log server (and logrotate.conf, restored after the unreadable scenario)
restore /etc/logrotate.conf; restore /etc/logrotate.d/dcops-remote
