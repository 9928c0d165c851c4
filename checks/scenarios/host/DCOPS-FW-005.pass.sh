# no insecure server (and the package database, restored after the unreadable scenario)
rm -f /usr/sbin/in.telnetd; restore /var/lib/dpkg/status
